//! Python's MSAL (from PyPI, in the venv `make deps` makes) gets a token from the lab's
//! tenant and calls Graph with it, as a script against Entra would.

use hybrid_lab_tests::{TestLab, install_crypto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_gets_a_token_and_graph_accepts_it() {
    install_crypto();
    let t = TestLab::start().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps`", python.display());
    let info = serde_json::to_string(&serde_json::json!({ "tenant": t.info().tenant })).unwrap();
    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/python/msal_graph.py"))
        .arg(info)
        .env("REQUESTS_CA_BUNDLE", &t.info().adds.ca_cert)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("3 checks passed"), "{text}");
}
