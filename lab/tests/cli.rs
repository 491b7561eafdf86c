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
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
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
        .stderr(Stdio::piped())
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
    assert!(text.contains("PASS good") && text.contains("1 scenarios: 1 passed, 0 failed"), "{text}");
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
