//! Real clients no one here wrote, through the lab's sign-in pages in headless Chromium over
//! WebDriver: Python MSAL's authorization code flow (`initiate_auth_code_flow`, PKCE) and
//! its device code flow completed by a second client (the browser); msal-node's and
//! openid-client's code flows (Node.js, from npm); the Python Graph SDK paging through 250
//! users with `$top=100`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hybrid_lab_tests::TestLab;
use hybrid_lab_tests::browser::Browser;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const USER1: (&str, &str) = ("user1@testlab.example", "Summer-Lake-41");

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A client program, its lines read as they come.
struct Client {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: String,
}

impl Client {
    fn start(mut cmd: tokio::process::Command, t: &TestLab) -> Client {
        cmd.env("REQUESTS_CA_BUNDLE", &t.info().adds.ca_cert)
            .env("NODE_EXTRA_CA_CERTS", &t.info().adds.ca_cert)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("the client starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Client { child, lines, seen: String::new() }
    }

    fn python(script: &str, args: &[&str], t: &TestLab) -> Client {
        let python = root().join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run `make deps`", python.display());
        let mut cmd = tokio::process::Command::new(python);
        cmd.arg(root().join("tests/python").join(script)).args(args);
        Client::start(cmd, t)
    }

    /// The next line that is a JSON object (the client's question or answer), within 60 s.
    async fn json(&mut self) -> serde_json::Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no answer in 60 s; so far:\n{}", self.seen))
                .unwrap()
                .unwrap_or_else(|| panic!("the client ended:\n{}", self.seen));
            self.seen.push_str(&line);
            self.seen.push('\n');
            if line.starts_with('{') {
                return serde_json::from_str(&line).unwrap();
            }
        }
    }

    async fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Everything the client still prints, and its success.
    async fn finish(mut self) -> String {
        while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(90), self.lines.next_line()).await {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.expect("the client ends").unwrap();
        assert!(status.success(), "{}", self.seen);
        self.seen
    }
}

fn info(t: &TestLab) -> String {
    serde_json::to_string(&serde_json::json!({ "tenant": t.info().tenant })).unwrap()
}

/// Signs in on the lab's pages from the username page on, as a person does.
async fn sign_in_on_the_pages(b: &mut Browser) {
    b.fill("i0116", USER1.0).await;
    b.submit("idSIButton9").await;
    b.fill("i0118", USER1.1).await;
    b.submit("idSIButton9").await;
}

/// Waits until the browser is at an address beginning with `prefix` (the app's redirect
/// URI; nothing listens there, the address is what the app would read).
async fn landed_at(b: &Browser, prefix: &str) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let now = b.c.current_url().await.expect("url").to_string();
        if now.starts_with(prefix) {
            return now;
        }
        assert!(Instant::now() < until, "not sent back to {prefix}: at {now}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_msal_auth_code_flow_signs_in_through_the_pages_in_chromium() {
    let t = TestLab::start().await;
    let mut client = Client::python("msal_interactive.py", &["code", &info(&t)], &t);
    let ask = client.json().await;
    let mut b = Browser::open("msal-python-code", &t).await;
    b.c.goto(ask["auth_uri"].as_str().unwrap()).await.expect("the authorize page");
    b.shot("authorize-username").await;
    sign_in_on_the_pages(&mut b).await;
    let landed = landed_at(&b, "http://localhost:53199").await;
    assert!(landed.contains("code=") && landed.contains("state="), "{landed}");
    client.say(&landed).await;
    let out = client.finish().await;
    assert!(out.contains("6 checks passed"), "{out}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_msal_device_flow_is_completed_by_a_second_client() {
    let t = TestLab::start().await;
    let mut client = Client::python("msal_interactive.py", &["device", &info(&t)], &t);
    let ask = client.json().await;
    let mut b = Browser::open("msal-python-device", &t).await;
    b.c.goto(ask["verification_uri"].as_str().unwrap()).await.expect("the Enter code page");
    b.fill("otc", ask["user_code"].as_str().unwrap()).await;
    b.submit("idSIButton9").await;
    assert!(b.text("loginHeader").await.contains("Are you trying to sign in to hybrid-lab automation?"));
    b.submit("idSIButton9").await;
    sign_in_on_the_pages(&mut b).await;
    b.shot("device-signed-in").await;
    let done = b.c.source().await.unwrap();
    assert!(done.contains("You have signed in to the hybrid-lab automation application on your device."), "{done}");
    // the device, polling all along, gets its token
    let out = client.finish().await;
    assert!(out.contains("6 checks passed"), "{out}");
    b.close().await;
}
