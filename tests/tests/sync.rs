//! Directory sync and password hash sync through real sockets: who may ask for a cycle,
//! who may read NT hashes (and how: never through a plain search), and the tenant's export
//! endpoint guarded by the engine's relay credential.

use hybrid_lab_tests::{TestLab, Via, install_crypto};
use ldap3::controls::RawControl;
use ldap3::{Scope, SearchEntry};
use serde_json::json;

const GET_CHANGES: &str = writeback::sync::OID_GET_CHANGES_WITH_SECRETS;

async fn hashes_as(t: &TestLab, name: &str, password: &str) -> (u32, usize) {
    let mut l = t.bind(Via::Ldaps, name, password).await;
    let ctrl = RawControl { ctype: GET_CHANGES.into(), crit: true, val: None };
    let base = format!("OU=Lab Users,{}", t.base());
    let r = l.with_controls(vec![ctrl]).search(&base, Scope::Subtree, "(objectClass=user)", vec!["sAMAccountName"]).await.unwrap();
    let with_hash =
        r.0.into_iter().map(SearchEntry::construct).filter(|e| e.bin_attrs.get("unicodePwd").is_some_and(|v| v[0].len() == 16)).count();
    (r.1.rc, with_hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nt_hashes_go_only_to_replication_rights_and_only_through_the_get_changes_control() {
    install_crypto();
    let t = TestLab::start().await;
    // a plain search never returns them, whoever asks
    let mut admin = t.admin(Via::Ldaps).await;
    let base = format!("OU=Lab Users,{}", t.base());
    let (entries, _) = admin.search(&base, Scope::Subtree, "(objectClass=user)", vec!["unicodePwd", "*"]).await.unwrap().success().unwrap();
    assert!(
        entries
            .into_iter()
            .map(SearchEntry::construct)
            .all(|e| !e.bin_attrs.contains_key("unicodePwd") && !e.attrs.contains_key("unicodePwd"))
    );
    // the connector holds Replicating Directory Changes (All), as Connect's wizard grants
    let connector = t.info().users.iter().find(|u| u.sam == labkit::testlab::CONNECTOR).unwrap().dn.clone();
    assert_eq!(hashes_as(&t, &connector, labkit::testlab::CONNECTOR_PASSWORD).await, (0, 4));
    // a plain user does not
    assert_eq!(hashes_as(&t, "TESTLAB\\User1", &t.password_of("User1")).await, (50, 0));
    // take one of the two rights away: no secrets
    let admin_token = t.admin_token().await;
    let (s, _) = t
        .call(
            "POST",
            "/lab/adds/rights",
            Some(&admin_token),
            Some(json!({ "action": "revoke", "right": "Replicating Directory Changes All" })),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(hashes_as(&t, &connector, labkit::testlab::CONNECTOR_PASSWORD).await.0, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cycle_is_an_administrators_request_and_needs_a_connected_engine() {
    install_crypto();
    let t = TestLab::start_with(|c| {
        c.engine = true;
        c.presynced = false;
    })
    .await;
    let user = t.user_token("user5@testlab.onmicrosoft.com", labkit::testlab::USER5_CLOUD.1).await;
    let (s, body) = t.call("POST", "/lab/sync", Some(&user), Some(json!({}))).await;
    assert_eq!((s, body["error"]["code"].as_str()), (403, Some("Authorization_RequestDenied")), "{body}");
    let admin = t.admin_token().await;
    let (s, body) = t.call("POST", "/lab/sync", Some(&admin), Some(json!({ "policyType": "Sideways" }))).await;
    assert_eq!(s, 400, "{body}");
    let (s, report) = t.call("POST", "/lab/sync", Some(&admin), Some(json!({ "policyType": "Initial" }))).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(
        (report["added"].as_u64(), report["passwords"].as_u64(), report["policyType"].as_str()),
        (Some(4), Some(4), Some("Initial"))
    );
    // the synced twin signs in with the AD password; no hash ever travelled in clear
    let (s, _) = t.token("user1@testlab.example", &t.password_of("User1")).await;
    assert_eq!(s, 200);
    // the export endpoint takes only an engine's relay credential
    let (s, _) = t.call("POST", "/lab/sync/export", Some(&admin), Some(json!({ "users": [], "deletes": [], "passwords": [] }))).await;
    assert_eq!(s, 401);
    // with the engine stopped, nobody answers
    let engine = t.lab.engine.clone().unwrap();
    engine.stop();
    assert!(engine.wait_disconnected(std::time::Duration::from_secs(10)).await, "a stopped engine closes its relay link");
    let (s, body) = t.call("POST", "/lab/sync", Some(&admin), None).await;
    assert_eq!((s, body["error"]["code"].as_str()), (503, Some("serviceNotAvailable")), "{body}");
}
