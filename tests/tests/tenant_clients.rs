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

/// A lab whose clock stands at the wall clock's time (frozen there): clients that check a
/// token's `exp` and `iat` against their own clock (openid-client, msal-node) accept its
/// tokens, and the test stays deterministic.
async fn lab_at_wall_clock_time() -> TestLab {
    TestLab::start_with(|c| c.clock = clock::Clock::frozen(clock::OffsetDateTime::now_utc())).await
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
    let t = lab_at_wall_clock_time().await;
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
    let t = lab_at_wall_clock_time().await;
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

impl Client {
    fn node(args: &[&str], t: &TestLab) -> Client {
        let modules = root().join("tests/node/node_modules");
        assert!(
            modules.join("@azure/msal-node").exists() && modules.join("openid-client").exists(),
            "{} is missing: run `make deps`",
            modules.display()
        );
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(root().join("tests/node/clients.mjs")).args(args);
        Client::start(cmd, t)
    }
}

/// A Node.js client's code flow: its authorization URL opened in Chromium, signed in on the
/// pages, the address it was sent back to handed to it.
async fn node_code_flow(mode: &str, expect: &str) {
    let t = lab_at_wall_clock_time().await;
    let mut client = Client::node(&[mode, &info(&t)], &t);
    let ask = client.json().await;
    let mut b = Browser::open(&format!("node-{mode}"), &t).await;
    b.c.goto(ask["auth_uri"].as_str().unwrap()).await.expect("the authorize page");
    sign_in_on_the_pages(&mut b).await;
    let landed = landed_at(&b, "http://localhost:53198").await;
    client.say(&landed).await;
    let out = client.finish().await;
    assert!(out.contains(expect), "{out}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_node_auth_code_flow_signs_in_through_the_pages_in_chromium() {
    node_code_flow("msal-code", "6 checks passed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_discovers_signs_in_and_reads_userinfo() {
    node_code_flow("oidc", "10 checks passed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_graph_sdk_pages_through_250_users_with_top_100() {
    let t = lab_at_wall_clock_time().await;
    let admin = t.admin_token().await;
    let (_, seeded) = t.call("GET", "/v1.0/users?$top=999&$select=id", Some(&admin), None).await;
    let seeded = seeded["value"].as_array().unwrap().len();
    // up to 250 users in all, made over Graph a few at a time
    let bodies: Vec<serde_json::Value> = (seeded..250)
        .map(|i| {
            serde_json::json!({
                "accountEnabled": true, "displayName": format!("Bulk {i:03}"), "mailNickname": format!("bulk{i:03}"),
                "userPrincipalName": format!("bulk{i:03}@testlab.example"),
                "passwordProfile": { "password": format!("Bulk-Pass-{i:03}-Xy"), "forceChangePasswordNextSignIn": false },
            })
        })
        .collect();
    use futures::StreamExt;
    let made: Vec<u16> = futures::stream::iter(bodies)
        .map(|b| {
            let (t, admin) = (&t, &admin);
            async move { t.call("POST", "/v1.0/users", Some(admin), Some(b)).await.0 }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(made.iter().all(|s| *s == 201), "{made:?}");
    let info = serde_json::json!({ "tenant": t.info().tenant, "ca": t.info().adds.ca_cert, "seeded": seeded }).to_string();
    let python = root().join(".venv/bin/python");
    // azure-identity's async transport (aiohttp) trusts what OpenSSL's SSL_CERT_FILE names
    let out = tokio::process::Command::new(python)
        .arg(root().join("tests/python/graph_sdk_paging.py"))
        .arg(info)
        .arg("250")
        .env("SSL_CERT_FILE", &t.info().adds.ca_cert)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("4 checks passed"), "{text}");
}
