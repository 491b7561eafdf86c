//! A trainer's classroom (issue 32, items 5 and 7): labs served to other machines by name,
//! `lab classroom` as docs/exercises.md shows it (run as written, a browser reaching each lab
//! by its name), and `lab reset` putting a lab back to its start with the same CA, ports and
//! URLs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hybrid_lab_tests::browser::Browser;
use serde_json::Value;

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: a signal to the child this test started
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

/// An HTTP client that trusts `ca_pem` and resolves `names` to 127.0.0.1 (as a trainee's
/// DNS would resolve them to the server), checking the certificate against the name.
fn client(ca_pem: &[u8], names: &[(&str, u16)]) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca_pem).unwrap())
        .redirect(reqwest::redirect::Policy::none());
    for (name, port) in names {
        b = b.resolve(name, std::net::SocketAddr::from(([127, 0, 0, 1], *port)));
    }
    b.build().unwrap()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap()
}

/// docs/exercises.md's classroom command, as written.
fn classroom_command() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/exercises.md")).unwrap();
    let start = doc.find("## A classroom").expect("the classroom section");
    let block = &doc[start..];
    let body = block.find("```sh\n").map(|i| &block[i + 6..]).expect("a sh block");
    let line = body.lines().find(|l| l.starts_with("cargo run -p lab -- classroom")).expect("the classroom command");
    // README shows the same command
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(readme.lines().any(|l| l == line), "README shows {line:?}");
    line.to_string()
}

/// Three labs on one machine, served by name, reached by a browser under each name: the
/// certificate names it, the Host is accepted, each lab's URLs name it, one lab's name on
/// another's port is refused (421), and the lab's own parts (the engine's onboarding, the
/// pages' reads) worked over loopback whatever it listens on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_labs_served_by_name_are_each_reached_by_that_name() {
    let command = classroom_command();
    assert!(command.contains("--labs 3") && command.contains("--hostname 'lab{n}.classroom.test'"), "{command}");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // `cargo run -p lab --` is the lab this test was built with
    let shim = bin.join("cargo");
    std::fs::write(&shim, format!("#!/bin/sh\nshift 4\nexec {:?} \"$@\"\n", env!("CARGO_BIN_EXE_lab"))).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new("bash")
        .args(["-c", &format!("exec {command}")])
        .current_dir(dir.path())
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = vec![];
    for l in lines.by_ref() {
        let l = l.unwrap();
        let done = l.starts_with("Put one lab back to its start");
        text.push(l);
        if done {
            break;
        }
    }
    let text = text.join("\n");
    let dashboards: Vec<String> = text.lines().filter_map(|l| l.split_once(" dashboard ").map(|(_, u)| u.trim().to_string())).collect();
    assert_eq!(dashboards.len(), 3, "{text}");
    for (i, d) in dashboards.iter().enumerate() {
        assert!(d.starts_with(&format!("https://lab{}.classroom.test:", i + 1)) && d.ends_with("/portal/lab"), "{d}\n{text}");
    }
    assert!(text.contains("sign in   labadmin@testlab.onmicrosoft.com / "), "{text}");
    assert!(text.contains("ldaps://lab1.classroom.test:"), "{text}");

    for (i, d) in dashboards.iter().enumerate() {
        let n = i + 1;
        let name = format!("lab{n}.classroom.test");
        let port = port_of(d);
        let ca = std::fs::read(dir.path().join(format!(".lab-classroom/lab{n}/ca.pem"))).unwrap();
        // its certificate names it (checked against the lab's CA), and its front door takes it
        let http = client(&ca, &[(&name, port)]);
        let r = http.get(format!("https://{name}:{port}/portal")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
        // OIDC discovery under the name: its endpoints name it too (what MSAL on a laptop follows)
        let info: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(format!(".lab-classroom/lab{n}/lab.json"))).unwrap()).unwrap();
        let authority = info["tenant"]["authority"].as_str().unwrap();
        assert!(authority.starts_with(&format!("https://{name}:{port}/")), "{authority}");
        let oidc: Value =
            http.get(format!("{authority}/v2.0/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
        assert!(oidc["token_endpoint"].as_str().unwrap().starts_with(&format!("https://{name}:{port}/")), "{oidc}");
        assert_eq!(oidc["issuer"], format!("{authority}/v2.0"), "the issuer is the lab's first name");
        let token: Value = http
            .post(oidc["token_endpoint"].as_str().unwrap())
            .form(&[
                ("grant_type", "password"),
                ("client_id", info["tenant"]["client_id"].as_str().unwrap()),
                ("username", "user1@testlab.example"),
                ("password", "Summer-Lake-41"),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(token["access_token"].is_string(), "a sign-in by name: {token}");
        // another lab's name on this lab's port (a Host the trainee's browser would never
        // send, a DNS-rebinding page would): not this lab
        let other = format!("lab{}.classroom.test:{port}", n % 3 + 1);
        let h1 = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
            .resolve(&name, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .http1_only()
            .build()
            .unwrap();
        let r = h1.get(format!("https://{name}:{port}/portal")).header("host", &other).send().await.unwrap();
        assert_eq!(r.status(), 421, "{other} at lab {n}");
        // and under its name, a change another site asks for is refused; the lab's switches
        // need its administrator
        let r = h1
            .post(format!("https://{name}:{port}/portal/lab/clock"))
            .header("origin", "https://evil.example")
            .form(&[("advance", "1d")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "cross-site under {name}");
        let r = h1.post(format!("https://{name}:{port}/lab/clock")).json(&serde_json::json!({"advance": "1d"})).send().await.unwrap();
        assert_eq!(r.status(), 401, "no administrator under {name}");
        // the engine onboarded over loopback: it runs
        assert!(info["engine"]["id"].is_string(), "lab {n} runs its engine: {info}");
        assert_eq!(info["dashboard"], d.as_str());
    }

    // a browser reaches each lab by its name and signs in to its dashboard
    let rules = "--host-resolver-rules=MAP *.classroom.test 127.0.0.1";
    for (i, d) in dashboards.iter().enumerate() {
        let base = d.trim_end_matches("/portal/lab");
        let mut b = Browser::open_at(&format!("classroom-lab{}", i + 1), base, &[rules]).await;
        b.goto("/portal/lab").await;
        assert_eq!(b.text("engine-link").await, "connected", "lab {}", i + 1);
        let url = b.c.current_url().await.unwrap();
        assert_eq!(url.host_str(), Some(format!("lab{}.classroom.test", i + 1).as_str()));
        b.shot("dashboard").await;
        if i == 0 {
            // the trainer resets lab 1 from its dashboard: it comes back on the same name, port
            // and CA, a new lab (a new engine registration), the trainer asked to sign in again
            let json = dir.path().join(".lab-classroom/lab1/lab.json");
            let before: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
            let ca = std::fs::read(dir.path().join(".lab-classroom/lab1/ca.pem")).unwrap();
            b.click("reset-lab").await;
            b.c.accept_alert().await.expect("the confirmation");
            b.wait("resetting").await;
            b.shot("resetting").await;
            b.wait("signin").await;
            assert_eq!(b.c.current_url().await.unwrap().host_str(), Some("lab1.classroom.test"));
            let after: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
            assert_ne!(after["engine"]["id"], before["engine"]["id"], "a new lab");
            assert_eq!((&after["dashboard"], &after["adds"]["ldaps"]), (&before["dashboard"], &before["adds"]["ldaps"]));
            assert_eq!(std::fs::read(dir.path().join(".lab-classroom/lab1/ca.pem")).unwrap(), ca, "the same CA");
            b.shot("after-reset").await;
        }
        b.close().await;
    }
    let status = sigterm(&mut child);
    assert!(status.success(), "SIGTERM stops every lab, exit 0: {status:?}");
}

/// `lab reset`: the lab back to its start — the exercise at its beginning, the lab clock
/// at its start — on the same ports, URLs and CA: a client that trusted the old ca.pem
/// connects to the new lab, and lab.json names the same endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_puts_the_lab_back_to_its_start_keeping_its_ca_ports_and_urls() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["up", "--json", "--frozen-clock", "--exercise", "missing-right"])
        .args(["--ldap", "127.0.0.1:0", "--ldaps", "127.0.0.1:0", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let before: Value = serde_json::from_str(&line).unwrap();
    let ca = std::fs::read(state.join("ca.pem")).unwrap();
    let https = before["tenant"]["https"].as_str().unwrap().to_string();
    let http = client(&ca, &[]);
    let t = &before["tenant"];
    let token = |http: reqwest::Client| {
        let form = [
            ("grant_type", "password"),
            ("client_id", t["client_id"].as_str().unwrap()),
            ("username", t["admin_upn"].as_str().unwrap()),
            ("password", t["admin_password"].as_str().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let url = format!("{}/oauth2/v2.0/token", t["authority"].as_str().unwrap());
        async move {
            http.post(url).form(&form).send().await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
        }
    };
    let admin = token(http.clone()).await;
    let rights = |http: reqwest::Client, admin: String| {
        let url = format!("{https}/lab/adds/rights");
        async move {
            let v: Value = http.get(url).bearer_auth(admin).send().await.unwrap().json().await.unwrap();
            v["rights"].as_array().unwrap_or_else(|| panic!("{v}")).iter().find(|r| r["right"] == "Reset Password").unwrap()["granted"]
                .as_bool()
                .unwrap()
        }
    };
    assert!(!rights(http.clone(), admin.clone()).await, "the exercise starts with the right taken away");
    // the trainee's work: the right granted, the clock a day on
    let r = http
        .post(format!("{https}/lab/adds/rights"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"action": "grant", "right": "Reset Password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http.post(format!("{https}/lab/clock")).bearer_auth(&admin).json(&serde_json::json!({"advance": "1d"})).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // (a day on, the token has expired: tokens live on the lab clock)
    let admin = token(http.clone()).await;
    assert!(rights(http.clone(), admin.clone()).await);

    // without the administrator, no reset
    let r = http.post(format!("{https}/lab/reset")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let out = Command::new(env!("CARGO_BIN_EXE_lab")).args(["reset", "--state-dir"]).arg(&state).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the lab is up"), "{}", String::from_utf8_lossy(&out.stdout));

    assert_eq!(std::fs::read(state.join("ca.pem")).unwrap(), ca, "the same CA");
    let after: Value = serde_json::from_slice(&std::fs::read(state.join("lab.json")).unwrap()).unwrap();
    for key in [&["dashboard"][..], &["tenant", "https"], &["tenant", "authority"], &["adds", "ldaps"], &["adds", "ldap"]] {
        let pick = |v: &Value| key.iter().fold(v.clone(), |v, k| v[k].clone());
        assert_eq!(pick(&after), pick(&before), "{key:?}");
    }
    assert_eq!(after["exercise"], "missing-right");
    // a client that trusted the old CA talks to the new lab (its old token is the old lab's)
    let admin = token(http.clone()).await;
    assert!(!rights(http.clone(), admin.clone()).await, "the exercise is back at its beginning");
    let clock: Value = http.get(format!("{https}/lab/clock")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(clock["now"], "2026-01-05T09:00:00Z", "the lab clock at its start");
    // LDAPS with the old ca.pem, as an ldapsearch set up before the reset
    let who = Command::new("ldapwhoami")
        .args(["-H", after["adds"]["ldaps"].as_str().unwrap(), "-x", "-D", "TESTLAB\\User1", "-w", "Summer-Lake-41"])
        .env("LDAPTLS_CACERT", state.join("ca.pem"))
        .env("LDAPCONF", "/dev/null")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&who.stdout).contains("u:TESTLAB\\User1"), "{}", String::from_utf8_lossy(&who.stderr));
    assert!(sigterm(&mut child).success());
}

/// Issue 32, item 5: a lab bound to one address that is not 127.0.0.1 (a LAN address; here
/// 127.0.0.2, which nothing else listens on) onboarded its engine through `https://localhost`,
/// where nothing listened, and never came up. Its own parts now reach it at that address,
/// which its certificate names.
#[test]
fn a_lab_on_one_other_address_onboards_and_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "up",
            "--json",
            "--ldap",
            "127.0.0.2:0",
            "--ldaps",
            "127.0.0.2:0",
            "--https",
            "127.0.0.2:0",
            "--http",
            "127.0.0.2:0",
            "--state-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("one JSON line, got {line:?}: {e}"));
    assert!(info["engine"]["id"].is_string(), "the engine onboarded: {info}");
    assert!(info["tenant"]["https"].as_str().unwrap().starts_with("https://127.0.0.2:"), "{info}");
    let who = Command::new("ldapwhoami")
        .args(["-H", info["adds"]["ldaps"].as_str().unwrap(), "-x", "-D", "TESTLAB\\User1", "-w", "Summer-Lake-41"])
        .env("LDAPTLS_CACERT", info["adds"]["ca_cert"].as_str().unwrap())
        .env("LDAPCONF", "/dev/null")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&who.stdout).contains("u:TESTLAB\\User1"),
        "LDAPS at the address, its certificate naming it: {}",
        String::from_utf8_lossy(&who.stderr)
    );
    assert!(sigterm(&mut child).success());
}

/// A name that is not a host name is refused before anything starts, saying which.
#[test]
fn a_hostname_that_is_not_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "up",
            "--hostname",
            "lab 1.example",
            "--ldap",
            "127.0.0.1:0",
            "--ldaps",
            "127.0.0.1:0",
            "--https",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--hostname \"lab 1.example\": not a DNS name or an IP address"), "{err}");
    assert!(!dir.path().join("lab.json").exists());
}
