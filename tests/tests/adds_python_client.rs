//! Python's ldap3 (the client many AD scripts use) sees the same rules: the script in
//! tests/python/ad_rules.py runs against a fresh lab. The venv comes from `make deps`
//! (scripts/deps.sh) or .ci/run.

use hybrid_lab_tests::{TestLab, install_crypto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ldap3_sees_ads_rules() {
    install_crypto();
    let t = TestLab::start().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = root.join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps` (creates the venv with tests/python/requirements.txt)", python.display());
    let info = serde_json::to_string(&serde_json::json!({ "adds": t.info().adds, "users": t.info().users })).unwrap();
    let out = tokio::process::Command::new(&python).arg(root.join("tests/python/ad_rules.py")).arg(info).output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("18 checks passed"), "{text}");
}
