//! hybrid-lab from outside this repository (issue #18): `lab` installed by README's
//! `cargo install` line starts in an empty directory with everything it shows built in, and
//! the pytest example (examples/pytest) passes with Debian's pytest and the venv's clients.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// README's install command, as written (a line of a sh block starting `cargo install`).
fn readme_install_line() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    readme.lines().find(|l| l.starts_with("cargo install ")).expect("README shows how to install lab").to_string()
}

fn tls(ca: &[u8]) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(ca).unwrap()]).build().unwrap()
}

/// README's `cargo install` line, with two stand-ins that keep CI from a second, release
/// build: `--debug --offline` and this build's target directory. The installed `lab` then
/// runs where there is no checkout: `lab up --json` in an empty directory serves its pages,
/// lists and starts the exercises built into it, and prints its schemas.
#[test]
fn readme_cargo_install_gives_a_lab_that_runs_from_an_empty_directory() {
    let line = readme_install_line();
    assert!(line.contains("--path lab"), "{line}");
    let root = tempfile::tempdir().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| repo().join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("cargo"));
    let out = Command::new(&cargo)
        .args(words.take_while(|w| !w.starts_with('#')))
        .args(["--debug", "--offline"])
        .current_dir(repo())
        // cargo's variables for this test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …) would make
        // ring's build script, and everything above it, look changed to every later build
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| !k.starts_with("CARGO_") || k == "CARGO_HOME" || k == "CARGO_INCREMENTAL"))
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_INSTALL_ROOT", root.path())
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lab = root.path().join("bin/lab");
    assert!(lab.is_file());

    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&lab).args(args).current_dir(empty.path()).output().unwrap();
        assert!(out.status.success(), "lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = run(&["exercises"]);
    assert!(listed.contains("enable-writeback") && listed.contains("service-stopped"), "{listed}");
    let schema: serde_json::Value = serde_json::from_str(&run(&["schema", "exercise"])).unwrap();
    assert!(schema["properties"]["tasks"].is_object());

    let mut child = Command::new(&lab)
        .args(["up", "--json", "--exercise", "enable-writeback"])
        .args(["--ldap", "127.0.0.1:0", "--ldaps", "127.0.0.1:0", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .current_dir(empty.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("one JSON line, got {line:?}: {e}"));
    assert!(empty.path().join(".lab/ca.pem").is_file(), "the default state directory, in the empty directory");
    assert_eq!(info["exercise"], "enable-writeback", "the JSON names the exercise");
    let ca = std::fs::read(empty.path().join(".lab/ca.pem")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let t = &info["tenant"];
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let (page, engine) = rt.block_on(async {
        let http = tls(&ca);
        let page = http.get(s(&info["sspr"])).send().await.unwrap();
        let page = (page.status().as_u16(), page.text().await.unwrap());
        let form = [
            ("grant_type", "password".to_string()),
            ("client_id", s(&t["client_id"])),
            ("username", s(&t["admin_upn"])),
            ("password", s(&t["admin_password"])),
            ("scope", "https://graph.microsoft.com/.default".into()),
        ];
        let token: serde_json::Value =
            http.post(format!("{}/oauth2/v2.0/token", s(&t["authority"]))).form(&form).send().await.unwrap().json().await.unwrap();
        let engine: serde_json::Value = http
            .get(format!("{}/lab/engine/events", s(&t["https"])))
            .bearer_auth(s(&token["access_token"]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (page, engine)
    });
    assert_eq!(page.0, 200);
    assert!(page.1.contains("Get back into your account"), "the pages are in the binary");
    // the tutorial's start, from the exercise built in: Connect installed, writeback not onboarded
    let ids: Vec<u64> =
        engine["value"].as_array().unwrap_or_else(|| panic!("{engine}")).iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(!ids.is_empty() && !ids.contains(&31005), "installed, not onboarded yet: {engine}");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// docs/embedding.md's pytest fixtures: examples/pytest, copied out of the repository, run by
/// Debian's pytest (python3-pytest) in the venv scripts/deps.sh makes (ldap3, msal), with
/// this build's `lab` and the hybrid_lab package from lab/python.
#[test]
fn the_pytest_example_passes() {
    let python = repo().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps`", python.display());
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("pytest");
    assert!(Command::new("cp").arg("-r").arg(repo().join("examples/pytest")).arg(&copy).status().unwrap().success());
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"])
        .arg(&copy)
        .env("HYBRID_LAB_BIN", env!("CARGO_BIN_EXE_lab"))
        // the package the wheel installs, from the checkout (lab/tests/wheel.rs tests the wheel)
        .env("PYTHONPATH", repo().join("lab/python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("3 passed"), "{text}");
    let pytest = Command::new(&python).args(["-c", "import pytest; print(pytest.__file__)"]).output().unwrap();
    assert!(String::from_utf8_lossy(&pytest.stdout).starts_with("/usr/lib/python3/"), "Debian's pytest");
}
