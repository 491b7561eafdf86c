//! The `lab` command as a user runs it: `lab up --json` prints one line once every listener
//! is ready, `lab export` saves the directory, SIGTERM stops the lab with exit code 0, and
//! `lab up --adds-ldif` brings the saved state back.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

struct Running {
    child: Child,
    info: Value,
}

fn up(dir: &std::path::Path, extra: &[&str]) -> Running {
    up_with(dir, extra, &[], Stdio::piped())
}

/// `lab up` with environment variables and its standard error where the caller wants it.
fn up_with(dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .envs(env.iter().copied())
        .args([
            "up",
            "--json",
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
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("lab starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("one JSON line, got {line:?}: {e}"));
    Running { child, info }
}

fn sigterm(mut r: Running) -> std::process::ExitStatus {
    let pid = r.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    r.child.wait().unwrap()
}

fn ldapwhoami(info: &Value, name: &str, password: &str) -> String {
    let out = Command::new("ldapwhoami")
        .args(["-H", info["adds"]["ldaps"].as_str().unwrap(), "-x", "-D", name, "-w", password])
        .env("LDAPTLS_CACERT", info["adds"]["ca_cert"].as_str().unwrap())
        .env("LDAPCONF", "/dev/null")
        .output()
        .expect("ldapwhoami (Debian's ldap-utils: `make deps`)");
    format!("{}{}", String::from_utf8_lossy(&out.stdout).trim(), String::from_utf8_lossy(&out.stderr).trim())
}

/// The process contract: a SIGTERM sent the moment the JSON line is read ends the lab with
/// exit 0 (the handler is in place before the line is printed), time after time.
#[test]
fn sigterm_right_after_the_json_line_exits_0() {
    for i in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let status = sigterm(up(dir.path(), &["--no-engine"]));
        assert_eq!(status.code(), Some(0), "run {i}: {status:?}");
    }
}

/// A lab's heap is a few MiB: it never asks for transparent huge pages (each one 2 MiB
/// zeroed at first touch, ~1 ms of every start), not even for the allocations the Rust
/// runtime makes before `main`.
#[cfg(target_os = "linux")]
#[test]
fn a_running_lab_holds_no_transparent_huge_page() {
    let dir = tempfile::tempdir().unwrap();
    let r = up(dir.path(), &["--no-engine"]);
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", r.child.id())).unwrap();
    let huge = rollup.lines().find(|l| l.starts_with("AnonHugePages:")).expect("AnonHugePages in smaps_rollup");
    assert_eq!(huge.split_whitespace().nth(1), Some("0"), "{huge}");
    assert_eq!(sigterm(r).code(), Some(0));
}

/// The process contract and the Rust fixture describe a lab alike: `lab up --json`'s line is
/// `hybrid_lab::Lab::json()` for the same choices (only ports and the state directory differ),
/// and nothing else reaches stdout before or after it.
#[test]
fn the_json_line_is_the_fixtures_json_and_stdout_holds_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = up(dir.path(), &["--seed", "5", "--frozen-clock"]);
    let mut rest = String::new();
    let stdout = run.child.stdout.take();
    let cli = run.info.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let fixture: Value = rt.block_on(async {
        let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().seed(5)).await.unwrap();
        serde_json::from_str(lab.json()).unwrap()
    });
    assert_eq!(sigterm(run).code(), Some(0));
    if let Some(mut s) = stdout {
        std::io::Read::read_to_string(&mut s, &mut rest).unwrap();
    }
    assert_eq!(rest, "", "nothing on stdout after the JSON line");
    // what differs between two labs by design: ports, the state directory, the engine's
    // registration id
    let normal = |v: &Value| {
        let mut v = v.clone();
        v["adds"]["ca_cert"] = Value::Null;
        v["engine"]["id"] = Value::Null;
        let text = v.to_string();
        let ports = mask_ports(&text);
        serde_json::from_str::<Value>(&ports).unwrap()
    };
    assert_eq!(normal(&cli), normal(&fixture));
}

/// Every `:PORT` after a loopback host becomes `:PORT`.
fn mask_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(':') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let before = out.trim_end_matches(':');
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && (before.ends_with("localhost") || before.ends_with("127.0.0.1")) {
            out.push_str("PORT");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn up_prints_its_endpoints_and_credentials_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let lab = up(dir.path(), &[]);
    // the pages for people come first
    let https = lab.info["tenant"]["https"].as_str().unwrap().to_string();
    assert_eq!(lab.info["dashboard"], format!("{https}/portal/lab"));
    assert_eq!(lab.info["sspr"], format!("{https}/portal/sspr"));
    let a = &lab.info["adds"];
    for key in ["ldap", "ldaps", "base_dn", "domain", "netbios", "admin_dn", "admin_password", "ca_cert"] {
        assert!(a[key].is_string(), "adds.{key} in {}", lab.info);
    }
    assert!(a["ldap"].as_str().unwrap().starts_with("ldap://127.0.0.1:"));
    assert!(a["ldaps"].as_str().unwrap().starts_with("ldaps://127.0.0.1:"));
    assert_eq!(a["base_dn"], "DC=testlab,DC=example");
    assert_eq!(a["netbios"], "TESTLAB");
    assert!(std::fs::read_to_string(a["ca_cert"].as_str().unwrap()).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    let t = &lab.info["tenant"];
    for key in ["https", "http", "authority", "graph", "tenant_id", "admin_upn", "admin_password", "client_id", "client_secret"] {
        assert!(t[key].is_string(), "tenant.{key} in {}", lab.info);
    }
    assert!(t["authority"].as_str().unwrap().starts_with("https://localhost:"));
    assert!(t["authority"].as_str().unwrap().ends_with(t["tenant_id"].as_str().unwrap()));
    let users = lab.info["users"].as_array().unwrap();
    let on_prem: Vec<&Value> = users.iter().filter(|u| !u["dn"].as_str().unwrap().is_empty()).collect();
    let sams: Vec<&str> = on_prem.iter().map(|u| u["sam"].as_str().unwrap()).collect();
    assert_eq!(sams, ["Administrator", "User1", "User2", "User3", "User4", "User5", "MSOL_5f2a9c31d7e8"]);
    let synced: Vec<&str> = users.iter().filter(|u| u["synced"] == true).map(|u| u["sam"].as_str().unwrap()).collect();
    assert_eq!(synced, ["User1", "User2", "User3", "User4"]);
    let cloud_only: Vec<&str> =
        users.iter().filter(|u| u["cloud"] == true && u["synced"] == false).map(|u| u["upn"].as_str().unwrap()).collect();
    assert_eq!(cloud_only, ["labadmin@testlab.onmicrosoft.com", "helpdesk@testlab.example", "user5@testlab.onmicrosoft.com"]);
    for u in on_prem {
        for key in ["sam", "upn", "dn", "password", "about"] {
            assert!(u[key].is_string(), "{key} of {u}");
        }
        if u["sam"] != "User3" {
            // every seeded, enabled account binds with the password it is listed with
            assert_eq!(
                ldapwhoami(&lab.info, u["upn"].as_str().unwrap(), u["password"].as_str().unwrap()),
                format!("u:TESTLAB\\{}", u["sam"].as_str().unwrap())
            );
        }
    }
    assert_eq!(sigterm(lab).code(), Some(0));
}

/// A TLS connection to `url` (https:// or ldaps://) that sends `request` many times over and
/// goes away without reading a byte of the answers.
fn vanish_mid_answer(url: &str, ca_pem: &str, request: &[u8]) {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use std::io::Write;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let hostport = url.split("://").nth(1).unwrap().trim_end_matches('/');
    let host = hostport.rsplit_once(':').unwrap().0.to_string();
    let conn = rustls::ClientConnection::new(config.into(), ServerName::try_from(host).unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, std::net::TcpStream::connect(hostport).unwrap());
    tls.write_all(&request.repeat(2000)).unwrap();
    tls.flush().unwrap();
    // dropped here: the answers still being written meet a closed socket
}

/// A client that leaves in the middle of its answers — an aborted curl, a closed browser tab,
/// a killed test — costs its own connection, never the lab. TLS writes go through writev,
/// which raises SIGPIPE when the peer is gone: `lab up` used to take SIGPIPE's default (for
/// `lab exercises | head`) and died of the first such client, once even while starting.
#[test]
fn a_client_that_leaves_mid_answer_does_not_stop_the_lab() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = up(dir.path(), &["--no-engine"]);
    let ca = lab.info["adds"]["ca_cert"].as_str().unwrap().to_string();
    let https = lab.info["tenant"]["https"].as_str().unwrap().to_string();
    let ldaps = lab.info["adds"]["ldaps"].as_str().unwrap().to_string();
    // a rootDSE search: LDAPMessage { 1, searchRequest { "", base, never, 0, 0, FALSE, (objectClass=*), {} } }
    let root_dse: &[u8] =
        b"\x30\x25\x02\x01\x01\x63\x20\x04\x00\x0a\x01\x00\x0a\x01\x00\x02\x01\x00\x02\x01\x00\x01\x01\x00\x87\x0bobjectClass\x30\x00";
    for round in 0..5 {
        vanish_mid_answer(&https, &ca, b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: localhost\r\n\r\n");
        vanish_mid_answer(&ldaps, &ca, root_dse);
        assert!(lab.child.try_wait().unwrap().is_none(), "round {round}: the lab died: {:?}", lab.child.try_wait());
    }
    // still serving both protocols
    assert_eq!(
        ldapwhoami(&lab.info, lab.info["adds"]["admin_dn"].as_str().unwrap(), lab.info["adds"]["admin_password"].as_str().unwrap()),
        "u:TESTLAB\\Administrator"
    );
    let status = sigterm(lab);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn export_then_up_from_the_ldif_restores_passwords_and_objects() {
    let dir = tempfile::tempdir().unwrap();
    let lab = up(dir.path(), &[]);
    let a = lab.info["adds"].clone();
    let ldif = dir.path().join("saved.ldif");
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["export", "--ldaps", a["ldaps"].as_str().unwrap(), "--ca", a["ca_cert"].as_str().unwrap(), "-o"])
        .arg(&ldif)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // the same from the lab's state directory, as `lab sync` finds a lab
    let again = dir.path().join("again.ldif");
    let out =
        Command::new(env!("CARGO_BIN_EXE_lab")).args(["export", "--state-dir"]).arg(dir.path()).arg("-o").arg(&again).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&again).unwrap().lines().count(), std::fs::read_to_string(&ldif).unwrap().lines().count());
    assert_eq!(sigterm(lab).code(), Some(0));
    let text = std::fs::read_to_string(&ldif).unwrap();
    assert!(text.starts_with("version: 1\n"));
    assert!(!text.contains("Summer-Lake-41"), "no clear-text password in an export");

    let dir2 = tempfile::tempdir().unwrap();
    let restored = up(dir2.path(), &["--adds-ldif", ldif.to_str().unwrap()]);
    assert_eq!(ldapwhoami(&restored.info, "TESTLAB\\User1", "Summer-Lake-41"), "u:TESTLAB\\User1");
    assert_eq!(
        ldapwhoami(&restored.info, "CN=MSOL_5f2a9c31d7e8,OU=Service Accounts,DC=testlab,DC=example", "Connector-Svc-4417!"),
        "u:TESTLAB\\MSOL_5f2a9c31d7e8"
    );
    assert_eq!(sigterm(restored).code(), Some(0));
}

#[test]
fn a_bad_seed_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let ldif = dir.path().join("bad.ldif");
    std::fs::write(&ldif, "version: 1\n\ndn: OU=Good,DC=testlab,DC=example\nobjectClass: organizationalUnit\n\ndn: CN=Orphan,OU=Missing,DC=testlab,DC=example\nobjectClass: user\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["up", "--ldap", "127.0.0.1:0", "--ldaps", "127.0.0.1:0", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path())
        .arg("--adds-ldif")
        .arg(&ldif)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:6: noSuchObject (32)", ldif.display())), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_lab")).args(["up", "--ldap", "not-an-address"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'not-an-address' for '--ldap <LDAP>'"));
}

fn lab(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lab")).args(args).current_dir(cwd).output().expect("lab runs")
}

#[test]
fn check_and_run_scenario_files_with_exit_codes_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("s")).unwrap();
    std::fs::write(
        d.join("s/good.yaml"),
        "name: binds\nabout: a bind with the seeded password works over LDAPS\nsteps:\n  - ldap.bind: { user: 'TESTLAB\\User1', password: Summer-Lake-41 }\n",
    )
    .unwrap();
    let out = lab(&["check", "s"], d);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = lab(&["run", "s", "--junit", "junit.xml", "--transcripts", "tr"], d);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PASS good") && text.contains("1 scenario: 1 passed, 0 failed"), "{text}");
    let junit = std::fs::read_to_string(d.join("junit.xml")).unwrap();
    assert!(junit.contains("<testcase name=\"good\""), "{junit}");
    let transcript = std::fs::read_to_string(d.join("tr/good.txt")).unwrap();
    assert!(transcript.contains("LDAPS bind TESTLAB\\User1 ***") && !transcript.contains("Summer-Lake-41"), "{transcript}");

    // a wrong expectation: exit 1, the step's place, expected and actual
    std::fs::write(
        d.join("s/bad.yaml"),
        "name: wrong\nabout: a deliberately wrong expectation for the CLI test\nsteps:\n  - ldap.bind: { user: 'TESTLAB\\User1', password: Summer-Lake-41 }\n    expect: { ldap: invalidCredentials }\n",
    )
    .unwrap();
    let out = lab(&["run", "s", "--filter", "bad"], d);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("s/bad.yaml:4:5: step 1 `ldap.bind`"), "{text}");
    assert!(text.contains("expected: ldap invalidCredentials") && text.contains("actual:   ldap success (0)"), "{text}");
    assert!(!text.contains("good"), "--filter keeps only matching scenarios: {text}");

    // a file that does not parse: check names file:line:column
    std::fs::write(d.join("s/typo.yaml"), "name: t\nabout: a typo\nsteps:\n  - clock.advanse: 1d\n").unwrap();
    let out = lab(&["check", "s"], d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("s/typo.yaml:4:5: unknown variant `clock.advanse`"), "{err}");
    // said once (then the parser's picture of the place), and the summary counts mistakes
    assert_eq!(err.matches("s/typo.yaml:4:5: ").count(), 1, "said once: {err}");
    assert!(err.contains("--> s/typo.yaml:4:5") && err.contains("clock.advanse: 1d"), "then the place in the source: {err}");
    assert!(err.contains("Error: 1 mistake in 1 of 3 scenario files"), "{err}");
}

#[test]
fn run_writes_a_self_contained_html_report_with_diagrams_and_no_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("s")).unwrap();
    std::fs::write(
        d.join("s/reset.yaml"),
        "name: an SSPR reset written back\nabout: the report's diagram reaches AD DS\ngiven:\n  ad-ds: { policy: { min_age: 0 } }\nsteps:\n  - sspr.reset: { user: user1@testlab.example, new_password: Report-Pass-71 }\n  - ldap.bind: { user: 'TESTLAB\\User1', password: Report-Pass-71 }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("s/wrong.yaml"),
        "name: wrong\nabout: a deliberately wrong expectation\nsteps:\n  - ldap.bind: { user: 'TESTLAB\\User1', password: Summer-Lake-41 }\n    expect: { ldap: invalidCredentials }\n",
    )
    .unwrap();
    let out = lab(&["run", "s", "--html", "report.html"], d);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.contains("2 scenarios: <span class=\"pass\">1 passed</span>, <span class=\"fail\">1 failed</span>"), "{html}");
    // one diagram per scenario; the reset's goes through the relay and the engine to AD DS
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("modify CN=User1,OU=Lab Users,DC=testlab,DC=example: replace unicodePwd=***"), "engine → AD DS");
    assert!(html.contains("- expected: ldap invalidCredentials") && html.contains("+ actual:   ldap success (0)"), "the diff");
    assert!(html.contains("s/wrong.yaml:4:5: step 1 `ldap.bind`"), "the place");
    // self-contained, and no password anywhere
    assert!(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(!html.contains("Report-Pass-71") && !html.contains("Summer-Lake-41"));
}

#[test]
fn up_with_a_scenario_applies_its_given_before_the_trainee_plays() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lockout.yaml");
    std::fs::write(
        &file,
        "name: lockout\nabout: two wrong passwords lock User4 with this policy\ngiven:\n  ad-ds: { policy: { lockout_threshold: 2 } }\nsteps:\n  - ldap.bind: { user: 'TESTLAB\\User4', password: Wrong-1 }\n",
    )
    .unwrap();
    let r = up(&dir.path().join("state"), &["--scenario", file.to_str().unwrap()]);
    for _ in 0..2 {
        let out = ldapwhoami(&r.info, "TESTLAB\\User4", "Wrong-Pass-1");
        assert!(out.contains("data 52e"), "{out}");
    }
    let locked = ldapwhoami(&r.info, "TESTLAB\\User4", "Copper-River-93");
    assert!(locked.contains("data 775"), "the scenario's threshold of 2 applies: {locked}");
    assert!(sigterm(r).success());
}

#[test]
fn sync_on_a_running_lab_brings_the_on_premises_users_and_reports_the_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let r = up(dir.path(), &["--unsynced", "--frozen-clock"]);
    let sync = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lab")).arg("sync").arg("--state-dir").arg(dir.path()).args(extra).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // lab.json is the lab's to read, nobody else's
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("lab.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    assert_eq!(sync(&["--initial"]).trim(), "Initial cycle: 4 added, 0 updated, 0 deleted, 4 passwords");
    let report: Value = serde_json::from_str(&sync(&["--json"])).unwrap();
    assert_eq!((report["added"].as_u64(), report["policyType"].as_str()), (Some(0), Some("Delta")));
    assert!(sigterm(r).success());
    // with no lab there, it says where it looked
    let out = Command::new(env!("CARGO_BIN_EXE_lab")).args(["sync", "--state-dir"]).arg(dir.path().join("none")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lab.json"), "{}", String::from_utf8_lossy(&out.stderr));
}

// issue #15, item 6: with RUST_LOG=trace, ldap3_proto's request dump put every unicodePwd
// written on standard error — as text and as the bytes of its UTF-16 form.
#[test]
fn no_password_reaches_the_log_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let lab = up_with(&dir.path().join("state"), &[], &[("RUST_LOG", "trace")], Stdio::from(log));
    let info = lab.info.clone();
    let ca = info["adds"]["ca_cert"].as_str().unwrap();
    // an administrator's reset over LDAPS (the server's codec sees the value) ...
    let secret = "Trace-Secret-Pw-1";
    let utf16: Vec<u8> = format!("\"{secret}\"").encode_utf16().flat_map(u16::to_le_bytes).collect();
    use base64::Engine as _;
    let ldif = format!(
        "dn: CN=User4,OU=Lab Users,DC=testlab,DC=example\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {}\n-\n",
        base64::engine::general_purpose::STANDARD.encode(&utf16)
    );
    let ldif_path = dir.path().join("reset.ldif");
    std::fs::write(&ldif_path, ldif).unwrap();
    let out = Command::new("ldapmodify")
        .args(["-H", info["adds"]["ldaps"].as_str().unwrap(), "-x", "-D", info["adds"]["admin_dn"].as_str().unwrap()])
        .args(["-w", info["adds"]["admin_password"].as_str().unwrap(), "-f", ldif_path.to_str().unwrap()])
        .env("LDAPTLS_CACERT", ca)
        .env("LDAPCONF", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // ... a bind with it, and a Graph reset written back by the engine (its client's side)
    assert_eq!(ldapwhoami(&info, "TESTLAB\\User4", secret), "u:TESTLAB\\User4");
    let tenant = &info["tenant"];
    let curl = |args: &[&str]| {
        let out = Command::new("curl").args(["-s", "--cacert", ca]).args(args).output().unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    let form = format!(
        "grant_type=password&client_id={}&username={}&password={}&scope=https://graph.microsoft.com/.default",
        tenant["client_id"].as_str().unwrap(),
        tenant["admin_upn"].as_str().unwrap(),
        tenant["admin_password"].as_str().unwrap()
    );
    let token = curl(&["-d", &form, &format!("{}/oauth2/v2.0/token", tenant["authority"].as_str().unwrap())])["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = format!("Authorization: Bearer {token}");
    let user = curl(&["-H", &auth, &format!("{}/users/user1@testlab.example", tenant["graph"].as_str().unwrap())]);
    let reset = format!(
        "{}/users/{}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword",
        tenant["graph"].as_str().unwrap(),
        user["id"].as_str().unwrap()
    );
    curl(&["-H", &auth, "-H", "Content-Type: application/json", "-d", r#"{"newPassword":"Trace-Secret-Pw-2"}"#, &reset]);
    assert_eq!(sigterm(lab).code(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("TRACE"), "the log really was at trace level ({} bytes)", log.len());
    assert!(!log.contains("Trace-Secret-Pw"), "a password in clear in the log");
    // the UTF-16 bytes as a Debug dump would print them ("T", "r", "a", "c", "e")
    assert!(!log.contains("84, 0, 114, 0, 97, 0, 99, 0, 101, 0"), "a unicodePwd value's bytes in the log");
}

// issue #16, item 5: what a newcomer's mistakes print — the file named, what to do, one
// sentence with its causes, and no backtrace even with RUST_BACKTRACE=1.
#[test]
fn expected_errors_name_their_file_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let lab = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lab")).args(args).env("RUST_BACKTRACE", "1").current_dir(dir.path()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    // no lab.json: which file, and that a lab writes it
    let (code, _, err) = lab(&["sync", "--state-dir", state_arg]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("Error: reading ") && err.contains("lab.json (is a lab running?"), "{err}");
    assert!(!err.contains("stack backtrace") && !err.contains("Stack backtrace"), "no backtrace for an expected error: {err}");
    // a corrupt lab.json: named, and what to do
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("lab.json"), "{x").unwrap();
    std::fs::write(state.join("ca.pem"), "").unwrap();
    let (_, _, err) = lab(&["sync", "--state-dir", state_arg]);
    assert!(err.contains("lab.json is not the JSON `lab up` writes"), "{err}");
    // a lab that was running and is not any more
    let r = up(&state, &[]);
    assert_eq!(sigterm(r).code(), Some(0));
    let (code, _, err) = lab(&["sync", "--state-dir", state_arg]);
    assert_eq!(code, Some(1));
    assert!(err.contains("does not answer") && err.contains("is the lab running? (state dir"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // --transcripts naming a file, and one scenario's words
    let file = dir.path().join("one.yaml");
    std::fs::write(&file, "name: one\nabout: a bind\nsteps:\n  - ldap.bind: { user: 'TESTLAB\\User1', password: Summer-Lake-41 }\n")
        .unwrap();
    let (code, out, _) = lab(&["check", file.to_str().unwrap()]);
    assert_eq!((code, out.trim()), (Some(0), "1 scenario file checked: all valid"));
    std::fs::write(dir.path().join("t.txt"), "").unwrap();
    let (code, out, err) = lab(&["run", file.to_str().unwrap(), "--transcripts", "t.txt"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("1 scenario: 1 passed, 0 failed"), "{out}");
    assert!(err.contains("--transcripts t.txt: not a directory"), "{err}");
    // an OU directory sync cannot find is named when the lab starts
    let mut r = up_with(&dir.path().join("state2"), &["--sync-ou", "OU=Nowhere,DC=testlab,DC=example"], &[], Stdio::piped());
    let mut stderr = BufReader::new(r.child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("warning: --sync-ou OU=Nowhere,DC=testlab,DC=example: no such object"), "{line}");
    assert_eq!(sigterm(r).code(), Some(0));
    // the OS user's keys: made once in the key directory, used by every lab after, never
    // in a state directory; a key file others may read is refused (said on stderr) and remade
    use std::os::unix::fs::PermissionsExt;
    let keys = dir.path().join("user-cache/keys");
    let env = [("HYBRID_LAB_KEY_CACHE", keys.to_str().unwrap())];
    let read = |name: &str| std::fs::read(keys.join(name)).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let r = up_with(&dir.path().join("state3"), &[], &env, Stdio::null());
    assert_eq!(sigterm(r).code(), Some(0));
    assert_eq!(mode(&keys), 0o700);
    let names = ["tenant-signing.der", "writeback-engine.der"];
    let first: Vec<Vec<u8>> = names.iter().map(|n| read(n)).collect();
    for n in names {
        assert_eq!(mode(&keys.join(n)), 0o600, "{n}");
    }
    let r = up_with(&dir.path().join("state4"), &[], &env, Stdio::null());
    assert_eq!(sigterm(r).code(), Some(0));
    assert_eq!(names.iter().map(|n| read(n)).collect::<Vec<_>>(), first, "the same keys for the next lab");
    for state in ["state3", "state4"] {
        let files: Vec<String> =
            std::fs::read_dir(dir.path().join(state)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(!files.iter().any(|f| f.ends_with(".der")), "no key in {state}: {files:?}");
    }
    std::fs::set_permissions(keys.join(names[0]), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut r = up_with(&dir.path().join("state5"), &[], &env, Stdio::piped());
    let mut stderr = BufReader::new(r.child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("tenant-signing.der refused (mode 0644: others may read it): replaced by a new key"), "{line}");
    assert_eq!(sigterm(r).code(), Some(0));
    assert_eq!(mode(&keys.join(names[0])), 0o600);
    assert_ne!(read(names[0]), first[0], "a new signing key");
    assert_eq!(read(names[1]), first[1], "the engine's key was fine and is kept");
}

// issue #17, item 5: a suite split across CI machines — every file in exactly one shard,
// each shard with its own JUnit.
#[test]
fn run_partitions_the_files_across_shards_each_with_its_junit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("s")).unwrap();
    let names = ["a", "b", "c", "d", "e"];
    for n in names {
        std::fs::write(
            d.join(format!("s/{n}.yaml")),
            format!("name: {n}\nabout: a bind\nsteps:\n  - ldap.bind: {{ user: 'TESTLAB\\User1', password: Summer-Lake-41 }}\n"),
        )
        .unwrap();
    }
    let mut seen = vec![];
    for k in 1..=2 {
        let junit = format!("junit-{k}.xml");
        let out = lab(&["run", "s", "--partition", &format!("{k}/2"), "--junit", &junit], d);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let xml = std::fs::read_to_string(d.join(&junit)).unwrap();
        let shard: Vec<&str> = names.iter().copied().filter(|n| xml.contains(&format!("<testcase name=\"{n}\""))).collect();
        assert!(!shard.is_empty(), "shard {k}/2 ran something");
        seen.extend(shard);
    }
    seen.sort();
    assert_eq!(seen, names, "every file in exactly one shard");
    let out = lab(&["run", "s", "--partition", "3/2"], d);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("expected K/N"));
}

/// issue #30, item 3: a lab started for a test run (`--json`) ends with the process that
/// started it, so a killed pytest or cargo test leaves no orphan; `--exit-with-parent=false`
/// keeps one running.
#[test]
fn a_json_lab_exits_when_the_process_that_started_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ports = "--ldap 127.0.0.1:0 --ldaps 127.0.0.1:0 --https 127.0.0.1:0 --http 127.0.0.1:0 --no-engine";
    let script = format!(
        "\"$0\" up --json {ports} --state-dir \"$1/a\" > \"$1/a.json\" & echo $!; \
         \"$0\" up --json --exit-with-parent=false {ports} --state-dir \"$1/b\" > \"$1/b.json\" & echo $!; wait"
    );
    let mut sh =
        Command::new("sh").args(["-c", &script, env!("CARGO_BIN_EXE_lab"), d.to_str().unwrap()]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(sh.stdout.take().unwrap());
    let mut pids = vec![];
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        pids.push(line.trim().to_string());
    }
    // a process is gone when /proc has no such pid, or only its zombie awaiting a reaper
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
    };
    let until = |what: &dyn Fn() -> bool| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !what() {
            assert!(std::time::Instant::now() < end, "timed out");
            // (a poll, not a wait for something to happen by itself)
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    until(&|| ["a.json", "b.json"].iter().all(|f| std::fs::read_to_string(d.join(f)).is_ok_and(|t| t.ends_with('\n'))));
    assert!(alive(&pids[0]) && alive(&pids[1]));
    sh.kill().unwrap();
    sh.wait().unwrap();
    until(&|| !alive(&pids[0]));
    assert!(alive(&pids[1]), "--exit-with-parent=false: still running");
    assert!(Command::new("kill").args(["-TERM", &pids[1]]).status().unwrap().success());
    until(&|| !alive(&pids[1]));
}

/// issue 31, item 6: a file the lab is given is read up to a bound, whatever it is — a device
/// that never ends is an error naming the file and the limit, not a process filling memory.
#[test]
fn files_given_to_lab_are_read_up_to_a_bound() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let any = ["--ldap", "127.0.0.1:0", "--ldaps", "127.0.0.1:0", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0"];
    for (flags, says) in [
        (vec!["--adds-ldif", "/dev/zero"], "reading /dev/zero: larger than the 256 MiB the lab reads"),
        (vec!["--tls-cert", "/dev/zero", "--tls-key", "/dev/zero"], "/dev/zero: larger than the 1 MiB the lab reads"),
        (vec!["--scenario", "/dev/zero"], "larger than the 4 MiB the lab reads"),
    ] {
        let mut args = vec!["up", "--json", "--no-engine", "--state-dir", "state"];
        args.extend(any);
        args.extend(flags.iter().copied());
        let out = lab(&args, d);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
        assert!(out.stdout.is_empty(), "no JSON line");
    }
}

/// One state directory, one lab: a second `lab up` on a running lab's directory is refused,
/// naming the running lab, before it touches anything there (the first lab's ca.pem and
/// lab.json stay as they were, and its clients keep working); once the first has stopped,
/// the directory is free again.
#[test]
fn a_second_lab_on_a_running_labs_state_directory_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = up(dir.path(), &[]);
    let before = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let (ca, json) = (before("ca.pem"), before("lab.json"));
    let second = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["up", "--json", "--ldap", "127.0.0.1:0", "--ldaps", "127.0.0.1:0", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(second.stdout.is_empty(), "no JSON line");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("is in use by a running lab"), "{err}");
    assert!(err.contains(&format!("process {}", first.child.id())), "names the running lab's process: {err}");
    assert!(err.contains(first.info["dashboard"].as_str().unwrap()), "and its dashboard: {err}");
    assert_eq!((before("ca.pem"), before("lab.json")), (ca, json), "the running lab's files untouched");
    assert_eq!(ldapwhoami(&first.info, "TESTLAB\\User1", "Summer-Lake-41"), "u:TESTLAB\\User1", "the first lab still serves");
    assert!(sigterm(first).success());
    let again = up(dir.path(), &[]);
    assert!(sigterm(again).success(), "free once the first lab has stopped");
}

/// Issue 32: `lab check` took an exercise file for a scenario ("unknown field `title`").
/// Exercises are checked as exercises — a bad setup step named by file:line:column, an
/// answer given away in a description refused — beside the scenarios.
#[test]
fn check_validates_exercise_files_too() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = lab(&["check", "exercises", "scenarios"], &root);
    let said = String::from_utf8_lossy(&out.stdout);
    let shipped = std::fs::read_dir(root.join("exercises"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml"))
        .count();
    assert!(
        out.status.success() && said.contains(&format!("scenario files and {shipped} exercise files checked: all valid")),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root.join("exercises/missing-right.yaml")).unwrap();
    std::fs::write(dir.path().join("typo.yaml"), good.replace("engine.revoke_right:", "engine.revoke_rite:")).unwrap();
    std::fs::write(dir.path().join("tells.yaml"), good.replace("Someone took one of them away", "Someone took Reset Password away"))
        .unwrap();
    let out = lab(&["check", "."], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("typo.yaml:9:5: unknown variant `engine.revoke_rite`"), "{err}");
    assert!(err.contains("tells.yaml:1:1: the description contains the answer \"reset password\""), "{err}");
    assert!(err.contains("2 mistakes in 2 of 2 exercise files"), "{err}");
}

/// `lab up --sign-in pta --pta-agents 2`: pass-through authentication from the start, with
/// Connect's agent and two standalone ones, each registered (the line names them); a synced
/// user signs in through them; the flags' bounds are refused before anything starts.
#[test]
fn up_with_pass_through_authentication_and_standalone_agents() {
    let dir = tempfile::tempdir().unwrap();
    let run = up(dir.path(), &["--sign-in", "pta", "--pta-agents", "2"]);
    let info = run.info.clone();
    assert_eq!(info["sign_in"], "passThroughAuthentication", "{info}");
    let names: Vec<&str> = info["pta_agents"].as_array().unwrap().iter().map(|a| a["machine_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["CONNECT1", "PTA2", "PTA3"]);
    let out = Command::new("curl")
        .args(["-s", "--cacert", info["adds"]["ca_cert"].as_str().unwrap()])
        .arg(format!("{}/oauth2/v2.0/token", info["tenant"]["authority"].as_str().unwrap()))
        .args(["-d", "grant_type=password", "-d", &format!("client_id={}", info["tenant"]["client_id"].as_str().unwrap())])
        .args(["-d", "username=user1@testlab.example", "-d", "password=Wrong-Pass-1", "-d", "scope=openid"])
        .output()
        .expect("curl");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["error_codes"][0], 50126, "{answer}");
    assert_eq!(sigterm(run).code(), Some(0));
    for bad in [&["--sign-in", "adfs"][..], &["--pta-agents", "40"], &["--sign-in", "pta", "--no-engine"]] {
        let out = lab(&[&["up", "--state-dir", "x"][..], bad].concat(), dir.path());
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `lab up --agent both` (README, docs/writeback.md): Connect's engine and Cloud Sync's
/// provisioning agent side by side; the line names the agent, its gMSA and scope, and User6 as
/// Cloud Sync's; User6 binds as seeded, the gMSA signs in to AD with what only the agent
/// holds (not with anything the line shows); `--agent cloud-sync` puts the agent in Connect's
/// place; a wrong agent name and Cloud Sync with pass-through authentication are refused.
#[test]
fn up_with_cloud_sync_beside_connect_or_alone() {
    let dir = tempfile::tempdir().unwrap();
    let run = up(dir.path(), &["--agent", "both"]);
    let info = run.info.clone();
    assert_eq!(info["engine"]["kind"], "ConnectSync", "{info}");
    let cs = &info["cloud_sync"];
    assert_eq!(cs["gmsa"], "CN=provAgentgMSA,CN=Managed Service Accounts,DC=testlab,DC=example", "{info}");
    assert_eq!(cs["scope"][0], "OU=Cloud Sync Users,DC=testlab,DC=example");
    assert_ne!(cs["id"], info["engine"]["id"]);
    let user6 = info["users"].as_array().unwrap().iter().find(|u| u["sam"] == "User6").expect("User6").clone();
    assert_eq!((user6["agent"].as_str(), user6["synced"].as_bool()), (Some("CloudSync"), Some(true)));
    assert!(ldapwhoami(&info, "TESTLAB\\User6", "Harbor-Light-36").contains("User6"));
    assert!(!info.to_string().contains("Gm-"), "the gMSA's password is the agent's alone: {info}");
    assert_eq!(sigterm(run).code(), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let run = up(dir.path(), &["--agent", "cloud-sync"]);
    let info = run.info.clone();
    assert_eq!(info["engine"]["kind"], "CloudSync", "{info}");
    assert_eq!(info["cloud_sync"]["id"], info["engine"]["id"]);
    assert_eq!(info["cloud_sync"]["scope"][0], "OU=Lab Users,DC=testlab,DC=example");
    assert!(info["users"].as_array().unwrap().iter().all(|u| u["sam"] != "User6"), "alone, it takes Connect's users");
    assert_eq!(sigterm(run).code(), Some(0));
    for bad in [&["--agent", "adconnect"][..], &["--agent", "cloud-sync", "--no-engine"]] {
        let out = lab(&[&["up", "--state-dir", "x"][..], bad].concat(), dir.path());
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = lab(&["up", "--state-dir", "y", "--agent", "cloud-sync", "--sign-in", "pta"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cloud Sync cannot configure it"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `lab run --agent cloud-sync` (docs/scenarios.md): the same files under Cloud Sync's agent;
/// one marked `cloud_sync_differs` that does differ is reported as a known difference, one
/// whose mark is stale fails the run.
#[test]
fn run_under_cloud_sync_reports_the_known_differences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("scenarios/writeback/offboarding.yaml"), d.join("offboarding.yaml")).unwrap();
    std::fs::copy(root.join("scenarios/unlock/reset-alone-does-not-unlock.yaml"), d.join("same.yaml")).unwrap();
    let out = lab(&["run", "--agent", "cloud-sync", "."], d);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("DIFF offboarding") && text.contains("under Cloud Sync, as known: Offboarding is Connect's wizard"), "{text}");
    assert!(text.contains("PASS same") && text.contains("1 of them differ under Cloud Sync as known"), "{text}");
    // a mark on a scenario that comes out the same is stale
    let same = std::fs::read_to_string(d.join("same.yaml")).unwrap();
    std::fs::write(d.join("same.yaml"), same.replacen("steps:", "cloud_sync_differs: it does not\nsteps:", 1)).unwrap();
    let out = lab(&["run", "--agent", "cloud-sync", "."], d);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("remove `cloud_sync_differs`"), "{text}");
    // under Connect (the default), the marks do not apply
    assert!(lab(&["run", "."], d).status.success());
}

/// `lab up --dcs 2` (docs/ldap.md): DC2 on ports of its own, in `lab up --json`, its own name
/// in its rootDSE; what DC1 takes reaches DC2 by replication (or at once through the PDC
/// emulator, for a password); `--dcs` is 1 to 8.
#[test]
fn up_with_two_domain_controllers() {
    let dir = tempfile::tempdir().unwrap();
    let run = up(dir.path(), &["--dcs", "2"]);
    let info = run.info.clone();
    let dcs = info["adds"]["dcs"].as_array().unwrap().clone();
    assert_eq!(dcs.len(), 2, "{info}");
    assert_eq!((dcs[0]["name"].as_str(), dcs[0]["pdc"].as_bool()), (Some("DC1"), Some(true)));
    assert_eq!((dcs[1]["name"].as_str(), dcs[1]["pdc"].as_bool()), (Some("DC2"), Some(false)));
    assert_eq!(dcs[0]["ldaps"], info["adds"]["ldaps"], "the top-level URLs are DC1's");
    assert_ne!(dcs[1]["ldaps"], dcs[0]["ldaps"]);
    let mut dc2 = info.clone();
    dc2["adds"]["ldaps"] = dcs[1]["ldaps"].clone();
    assert!(ldapwhoami(&dc2, "TESTLAB\\User1", "Summer-Lake-41").contains("User1"), "DC2 holds the domain's users");
    let out = Command::new("ldapsearch")
        .args([
            "-H",
            dcs[1]["ldaps"].as_str().unwrap(),
            "-x",
            "-LLL",
            "-D",
            "TESTLAB\\User1",
            "-w",
            "Summer-Lake-41",
            "-b",
            "",
            "-s",
            "base",
        ])
        .args(["dnsHostName"])
        .env("LDAPTLS_CACERT", info["adds"]["ca_cert"].as_str().unwrap())
        .env("LDAPCONF", "/dev/null")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("dnsHostName: dc2.testlab.example"), "{}", String::from_utf8_lossy(&out.stdout));
    // `lab dcs --object`: the object as each DC holds it
    let out = lab(&["dcs", "--state-dir", dir.path().to_str().unwrap(), "--object", "User1", "--replicate"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("replication every 15s of the lab clock"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("DC1") && l.contains("PDC emulator")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("DC2") && l.contains("up")), "{text}");
    assert_eq!(text.matches("CN=User1,OU=Lab Users,DC=testlab,DC=example: uSNChanged").count(), 2, "{text}");
    assert_eq!(sigterm(run).code(), Some(0));
    for bad in ["0", "9"] {
        let out = lab(&["up", "--state-dir", "x", "--dcs", bad], dir.path());
        assert_eq!(out.status.code(), Some(2), "--dcs {bad}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `lab up --forests 2 --child-domain` (docs/ldap.md): every domain in `lab up --json`, each
/// DC answering for its own domain's users.
#[test]
fn up_with_a_second_forest_and_a_child_domain() {
    let dir = tempfile::tempdir().unwrap();
    let run = up(dir.path(), &["--forests", "2", "--child-domain"]);
    let info = run.info.clone();
    let domains = info["adds"]["domains"].as_array().unwrap().clone();
    let names: Vec<&str> = domains.iter().map(|d| d["domain"].as_str().unwrap()).collect();
    assert_eq!(names, ["testlab.example", "fabrikam.example", "child.testlab.example"], "{info}");
    assert_eq!(domains[2]["forest"], "testlab.example");
    assert_eq!(domains[1]["netbios"], "FABRIKAM");
    for (d, user, password) in [(&domains[1], "FABRIKAM\\FUser1", "Maple-Ridge-52"), (&domains[2], "CHILD\\CUser1", "Cedar-Brook-63")] {
        let mut at = info.clone();
        at["adds"]["ldaps"] = d["dcs"][0]["ldaps"].clone();
        assert!(ldapwhoami(&at, user, password).contains(user), "{user} on {}", d["dcs"][0]["name"]);
    }
    assert!(info["users"].as_array().unwrap().iter().any(|u| u["upn"] == "fuser1@fabrikam.example" && u["synced"] == false));
    assert_eq!(sigterm(run).code(), Some(0));
    let out = lab(&["up", "--state-dir", "x", "--forests", "3"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
