//! issue #30, item 4: for people without a Rust toolchain — the wheel (maturin's bin
//! bindings) holds `lab` and the `hybrid_lab` package with its pytest plugin. Built here from
//! lab/pyproject.toml, installed into a fresh venv with nothing else of this checkout on hand,
//! and the plugin's example (examples/pytest-plugin) run there by pytest.

use std::path::Path;
use std::process::Command;

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn the_wheel_gives_lab_and_a_pytest_plugin_in_a_fresh_venv() {
    let repo = repo();
    let maturin = repo.join(".venv/bin/maturin");
    assert!(maturin.exists(), "{} is missing: run `make deps`", maturin.display());
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| repo.join("target"));
    // the debug profile and this build's target directory: CI makes no second, release build
    // (a release wheel is the same command with --release); not --offline: cargo metadata
    // reads every platform's dependencies, which the registry (reachable from CI) has
    // and the test build did not fetch
    run(Command::new(&maturin)
        .args(["build", "--locked", "--compatibility", "linux", "-m"])
        .arg(repo.join("lab/Cargo.toml"))
        .arg("--out")
        .arg(&dist)
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| !k.starts_with("CARGO_") || k == "CARGO_HOME" || k == "CARGO_INCREMENTAL"))
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only"));
    let wheels: Vec<_> = std::fs::read_dir(&dist).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    let name = wheels[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("hybrid_lab-") && name.ends_with(".whl"), "{name}");

    // a fresh venv on Debian's Python, seeing its pytest (python3-pytest), and the wheel alone
    let venv = dir.path().join("venv");
    run(Command::new("/usr/bin/python3").args(["-m", "venv", "--system-site-packages"]).arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--no-index", "--no-deps", "--disable-pip-version-check"])
        .arg(&wheels[0]));
    assert!(venv.join("bin/lab").exists(), "the wheel put `lab` in the venv's scripts");
    let copy = dir.path().join("example");
    assert!(Command::new("cp").arg("-r").arg(repo.join("examples/pytest-plugin")).arg(&copy).status().unwrap().success());
    let text = run(Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&copy)
        .current_dir(dir.path())
        .env_remove("HYBRID_LAB_BIN")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PATH", format!("{}:/usr/bin:/bin", venv.join("bin").display())));
    assert!(text.contains("3 passed"), "{text}");
    // the plugin is registered by its entry point, and says so
    let text = run(Command::new(venv.join("bin/python")).args(["-m", "pytest", "--help"]).current_dir(dir.path()));
    assert!(text.contains("--hybrid-lab-flag"), "{text}");
}
