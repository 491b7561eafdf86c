//! hybrid-lab in another repository (issues #17 and #18): examples/consumer — a crate outside
//! this workspace with its own Cargo.toml — is copied out of the repository, pointed at this
//! checkout by path (as an outsider's dev-dependency would be), built and run with its own
//! `cargo test` with a lockfile of its own (the newest compatible versions, ldap3 with its
//! default features — native-tls — as a project of any age would have): the fixture's
//! `#[tokio::test]`s (ldap3 and reqwest against a lab each), and
//! its scenario files as one test per file, `--list` and name filters working. (It shares this
//! build's target directory; its own profile means its dependencies are built again, beside
//! this build's; runs alone: see .config/nextest.toml.)

use std::process::Command;

#[test]
fn the_consumer_example_passes_from_a_clean_copy() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("consumer");
    let cp = Command::new("cp").arg("-r").arg(repo.join("examples/consumer")).arg(&copy).status().unwrap();
    assert!(cp.success());
    let manifest = copy.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("path = \"../../crates/hybrid-lab\"") && text.contains("path = \"../../crates/scenario\""), "{text}");
    std::fs::write(&manifest, text.replace("\"../../crates/", &format!("\"{}/", repo.join("crates").display()))).unwrap();
    // no lockfile: cargo resolves the newest compatible versions, as for an outsider adding
    // the lab to a project of their own (ldap3 with its default features among them)
    assert!(!copy.join("Cargo.lock").exists(), "examples/consumer ships no lockfile");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| repo.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let run = |args: &[&str]| {
        let out = Command::new(&cargo)
            .args(args)
            .current_dir(&copy)
            // cargo's variables for this test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …) would make
            // ring's build script, and everything above it, look changed to every later build
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| !k.starts_with("CARGO_") || k == "CARGO_HOME" || k == "CARGO_INCREMENTAL"))
            .env("CARGO_TARGET_DIR", &target)
            // the copy's profile differs from this workspace's (its own opt-levels), so it builds
            // a second tree beside this build on the same disk: without debug info it takes a
            // third of the room (a full disk killed CI's linker with SIGBUS)
            .env("CARGO_PROFILE_DEV_DEBUG", "false")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo");
        // cargo's hundreds of progress lines would bury an error where a log is cut short
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr: Vec<&str> = stderr.lines().filter(|l| !l.trim_start().starts_with("Compiling ")).collect();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr.join("\n"));
        (out.status.success(), text)
    };
    // the fixture: one lab per #[tokio::test], the clients the project uses
    let (ok, text) = run(&["test", "--test", "lab"]);
    let lock = std::fs::read_to_string(copy.join("Cargo.lock")).unwrap_or_default();
    assert!(lock.contains("name = \"native-tls\""), "ldap3's default TLS is in the build: {lock}");
    assert!(ok && text.contains("test result: ok. 4 passed"), "{text}");
    // the newest compatible dependencies deprecate nothing the lab calls without saying why
    // (a path dependency's warnings reach the outsider's build log)
    let deprecated: Vec<&str> = text.lines().filter(|l| l.contains("use of deprecated")).collect();
    assert!(deprecated.is_empty(), "the lab's crates use deprecated APIs: {deprecated:#?}");
    let (ok, text) = run(&["test", "--test", "scenarios", "--", "--list"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("our-policy-refuses-short-passwords: test") && text.contains("helpdesk-reset-is-written-back: test"),
        "one test per file: {text}"
    );
    let (ok, text) = run(&["test", "--test", "scenarios"]);
    assert!(ok && text.contains("2 passed"), "{text}");
    let (ok, text) = run(&["test", "--test", "scenarios", "--", "helpdesk"]);
    assert!(ok && text.contains("1 passed") && text.contains("1 filtered out"), "a name filter: {text}");
}
