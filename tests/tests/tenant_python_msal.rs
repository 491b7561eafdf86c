//! Python's MSAL (from PyPI, in the venv `make deps` makes) gets a token from the lab's
//! tenant and calls Graph with it, as a script against Entra would.

use hybrid_lab_tests::{TestLab, install_crypto};

/// Runs a script from tests/python with the lab's tenant info; its combined output.
async fn run_script(t: &TestLab, script: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps`", python.display());
    let info = serde_json::to_string(&serde_json::json!({ "tenant": t.info().tenant })).unwrap();
    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/python").join(script))
        .arg(info)
        .env("REQUESTS_CA_BUNDLE", &t.info().adds.ca_cert)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_gets_a_token_and_graph_accepts_it() {
    install_crypto();
    let t = TestLab::start().await;
    let text = run_script(&t, "msal_graph.py").await;
    assert!(text.contains("3 checks passed"), "{text}");
}

/// MSAL's username/password flow asks `userrealm` on port 443, so this lab listens there.
/// Binding 443 needs root (as CI runs); elsewhere the test says so and does nothing — except
/// where HYBRID_LAB_STRICT is set (`.ci/run` sets it), where not running is a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_signs_a_user_in_with_username_and_password_on_port_443() {
    install_crypto();
    if let Err(e) = std::net::TcpListener::bind("127.0.0.1:443") {
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "127.0.0.1:443 is taken: {e}");
        assert!(
            std::env::var_os("HYBRID_LAB_STRICT").is_none(),
            "not run: binding 127.0.0.1:443 needs root ({e}), and HYBRID_LAB_STRICT is set"
        );
        eprintln!("not run: binding 127.0.0.1:443 needs root ({e})");
        return;
    }
    let t = TestLab::start_with(|c| c.https = "127.0.0.1:443".parse().unwrap()).await;
    let text = run_script(&t, "msal_ropc.py").await;
    assert!(text.contains("5 checks passed"), "{text}");
}
