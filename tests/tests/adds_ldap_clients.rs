//! A DC's whole tree as real clients meet it, against a fresh lab: Python's ldap3 with its
//! schema check and python-ldap (tests/python/ad_tree.py), and Java's JNDI under its three
//! referral modes (tests/java/ReferralModes.java, run from source by `java`). The venv and
//! the JDK come from `make deps` (scripts/deps.sh) or .ci/run.

use hybrid_lab_tests::{TestLab, install_crypto};

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_read_ads_schema_partitions_and_references() {
    install_crypto();
    let t = TestLab::start().await;
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps`", python.display());
    let info = serde_json::to_string(&serde_json::json!({ "adds": t.info().adds, "users": t.info().users })).unwrap();
    let out = tokio::process::Command::new(&python).arg(root().join("tests/python/ad_tree.py")).arg(info).output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("15 checks passed"), "{text}");
}

/// What Java tools meet at a Windows DC's domain root: `ignore` ends in
/// PartialResultException "Unprocessed Continuation Reference(s)" (the error Spring LDAP
/// users learn to ignore), `throw` in a ReferralException naming the first reference, and
/// `follow` tries the referred host (here one no resolver knows, as on a machine outside the
/// forest's DNS) — each after the entry itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jndi_meets_continuation_references_in_each_referral_mode() {
    install_crypto();
    let t = TestLab::start().await;
    let adds = &t.info().adds;
    let java = which("java").expect("java is missing: run `make deps` (installs a JDK)");
    let user1 = t.info().users.iter().find(|u| u.sam == "User1").unwrap();
    let out = tokio::process::Command::new(java)
        .arg(root().join("tests/java/ReferralModes.java"))
        .args([&adds.ldap, &adds.admin_dn, &adds.admin_password, &adds.base_dn, "(sAMAccountName=User1)"])
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for mode in ["follow", "ignore", "throw"] {
        assert!(lines.contains(&format!("{mode} entry {}", user1.dn).as_str()), "{mode}: the entry comes first\n{text}");
        assert!(!lines.contains(&format!("{mode} done").as_str()), "{mode}: a domain-root search does not end cleanly\n{text}");
    }
    assert!(lines.contains(&"ignore PartialResultException Unprocessed Continuation Reference(s)"), "{text}");
    let forest_dns = format!("throw ReferralException ldap://ForestDnsZones.{}/DC=ForestDnsZones,{}", adds.domain, adds.base_dn);
    assert!(lines.contains(&forest_dns.as_str()), "{text}");
    let follow = lines.iter().find(|l| l.starts_with("follow ") && !l.starts_with("follow entry")).unwrap();
    assert!(follow.contains(&format!("{}:389", adds.domain)) && follow.contains("UnknownHostException"), "{text}");
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(cmd)).find(|f| f.is_file()))
}
