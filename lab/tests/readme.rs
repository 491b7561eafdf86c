//! README's five-minute tour, run as written (issue #16, item 3): the shell block under "A
//! five-minute tour" is extracted from README.md and run by bash in an empty directory, on the
//! README's own ports. The one stand-in is `cargo`: `cargo run -p lab -- ARGS` runs the `lab`
//! this test was built with (what `cargo run` would exec); every other command is the real
//! tool (OpenLDAP's ldapwhoami, ldapsearch, ldapmodify; iconv, base64). The test runs alone
//! (.config/nextest.toml): the README's ports are fixed.

use std::process::Command;

fn tour() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("## A five-minute tour").expect("the tour's heading");
    let block = &readme[start..];
    let body = block.find("```sh\n").map(|i| &block[i + 6..]).expect("a sh block");
    body[..body.find("\n```").expect("the block's end")].to_string()
}

#[test]
fn the_readme_tour_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let shim = bin.join("cargo");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nif [ \"$1 $2 $3 $4\" = \"run -p lab --\" ]; then shift 4; exec {:?} \"$@\"; fi\necho \"the tour ran cargo $*\" >&2; exit 2\n",
            env!("CARGO_BIN_EXE_lab")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let script = tour();
    let out = Command::new("timeout")
        .args(["300", "bash", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("LDAPTLS_CACERT")
        .output()
        .expect("bash");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the tour ends with the last lab stopped cleanly ({:?}):\n{text}", out.status);
    for (what, expect) in [
        ("the labs came up", "the lab is up: https://localhost:8443/portal/lab"),
        ("a bind by NetBIOS name", "u:TESTLAB\\User1"),
        ("a wrong password", "data 52e"),
        ("a disabled account", "data 533"),
        ("the paged search found the disabled User3", "sAMAccountName: User3"),
        ("the reset and the unlock", "modifying entry \"CN=User1,OU=Lab Users,DC=testlab,DC=example\""),
        ("the lockout", "data 775"),
        ("a delta cycle", "Delta cycle"),
        ("the restored lab's initial cycle", "Initial cycle"),
    ] {
        assert!(text.contains(expect), "{what}: no {expect:?} in\n{text}");
    }
    for wrong in ["command not found", "the tour ran cargo", "Error:", "No such file"] {
        assert!(!text.contains(wrong), "{wrong:?} in\n{text}");
    }
    // the lab after the unlock takes the reset password
    let after_unlock = text.rsplit("modifying entry").next().unwrap();
    assert!(after_unlock.contains("u:TESTLAB\\User1"), "{after_unlock}");
    let saved = std::fs::read_to_string(dir.path().join("saved.ldif")).expect("the export");
    assert!(saved.contains("dn: CN=User1,OU=Lab Users,DC=testlab,DC=example"));
    assert!(dir.path().join(".lab-restored/ca.pem").exists());
}

/// README's "Exercises" commands, from the repository's root as README runs them (the one
/// liberty: a state directory of the test's own instead of the default `.lab`).
#[test]
fn the_readme_exercise_commands_run_as_written() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(readme.contains("`cargo run -p lab -- up --exercise enable-writeback`") && readme.contains("`cargo run -p lab -- exercises`"));
    let out = Command::new(env!("CARGO_BIN_EXE_lab")).arg("exercises").current_dir(root).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    for name in ["enable-writeback", "protected-user", "missing-right", "service-stopped", "writeback-permissions"] {
        assert!(listed.contains(name), "{name} in\n{listed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["up", "--exercise", "enable-writeback", "--state-dir"])
        .arg(dir.path())
        .current_dir(root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(lab.stdout.take().unwrap()).lines();
    let mut seen = vec![];
    let ready = loop {
        match lines.next() {
            Some(Ok(l)) => {
                let done = l.starts_with("The dashboard (https://localhost:8443/portal/lab) ticks each task");
                seen.push(l);
                if done {
                    break true;
                }
            }
            _ => break false,
        }
    };
    // SAFETY: a signal to the child this test started
    unsafe { libc::kill(lab.id() as i32, libc::SIGTERM) };
    let status = lab.wait().unwrap();
    let text = seen.join("\n");
    assert!(ready, "{text}");
    assert!(
        text.contains("Exercise: Enable password writeback") && text.contains("  1. Microsoft Entra Connect: enable Password writeback"),
        "{text}"
    );
    assert!(status.success(), "SIGTERM ends the lab with 0: {status:?}");
    // the guide's commands work for whoever follows them: the outbox is the administrator's page
    assert!(text.contains("/portal/outbox        # the codes SSPR sends (sign in as labadmin@testlab.onmicrosoft.com)"), "{text}");
    assert!(!text.contains("/lab/outbox"), "no curl that the lab's front door refuses: {text}");
}
