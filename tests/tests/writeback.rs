//! Writeback end to end through real sockets: the tenant, the relay WebSocket, the engine,
//! LDAPS to the AD DS. Concurrency: many users at once, and one user many times at once —
//! no lost or half-applied update, no deadlock, the two sides never apart.

use std::time::Duration;

use futures::future::join_all;
use hybrid_lab_tests::{TestLab, Via, install_crypto};

/// Waits for a condition the lab reaches by itself (at most 10 s), never a fixed time.
async fn until(cond: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

async fn lab_with(users: usize) -> TestLab {
    let t = TestLab::start_with(|c| {
        c.engine = true;
        c.load_users = users;
    })
    .await;
    // testlab's passwords were set at the lab epoch; the minimum age is a day
    t.lab.clock.advance(Duration::from_secs(86_400));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_users_reset_at_once_all_land_on_both_sides() {
    install_crypto();
    let t = lab_with(200).await;
    let admin = t.admin_token().await;
    let statuses = join_all((0..200).map(|i| {
        let (t, admin) = (&t, &admin);
        async move { t.graph_reset(admin, &format!("load{i}@testlab.example"), &format!("Concurrent-Reset-{i}-Xy")).await }
    }))
    .await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    for i in (0..200).step_by(7) {
        assert!(t.ad_accepts(&format!("TESTLAB\\Load{i}"), &format!("Concurrent-Reset-{i}-Xy")).await, "AD has Load{i}'s new password");
        let (status, body) = t.token(&format!("load{i}@testlab.example"), &format!("Concurrent-Reset-{i}-Xy")).await;
        assert_eq!((status, body["error_codes"][0].as_u64()), (400, Some(50055)), "the cloud has it too (and asks for a change)");
    }
    let events = t.lab.engine.as_ref().unwrap().events();
    assert_eq!(events.iter().filter(|e| e.id == 31010).count(), 200);
    assert!(events.iter().all(|e| !e.message.contains("Concurrent-Reset")), "no password in the event log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_resets_of_one_user_at_once_leave_both_sides_on_the_same_password() {
    install_crypto();
    let t = lab_with(1).await;
    // no minimum age: every one of the fifty may succeed, one after the other
    let mut l = t.admin(Via::Ldaps).await;
    let base = t.base();
    let set = |a: &'static str, v: &'static str| ldap3::Mod::Replace(a, std::collections::HashSet::from([v]));
    // (and no lockout: the check below tries forty-nine wrong passwords)
    let mods = vec![set("minPwdAge", "0"), set("pwdHistoryLength", "0"), set("lockoutThreshold", "0")];
    assert_eq!(l.modify(&base, mods).await.unwrap().rc, 0);
    let admin = t.admin_token().await;
    let passwords: Vec<String> = (0..50).map(|i| format!("Same-User-Reset-{i}-Xy")).collect();
    let statuses = join_all(passwords.iter().map(|p| {
        let (t, admin) = (&t, &admin);
        async move { t.graph_reset(admin, "load0@testlab.example", p).await }
    }))
    .await;
    assert!(statuses.iter().all(|s| s == "succeeded"), "{statuses:?}");
    // exactly one of them is AD's password now, and the cloud has that same one
    let mut ad = vec![];
    for p in &passwords {
        if t.ad_accepts("TESTLAB\\Load0", p).await {
            ad.push(p.clone());
        }
    }
    assert_eq!(ad.len(), 1, "{ad:?}");
    let (status, body) = t.token("load0@testlab.example", &ad[0]).await;
    assert_eq!((status, body["error_codes"][0].as_u64()), (400, Some(50055)), "the cloud's password is AD's: {body}");
    let other = passwords.iter().find(|p| **p != ad[0]).unwrap();
    assert_eq!(t.token("load0@testlab.example", other).await.1["error_codes"][0].as_u64(), Some(50126));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_reconnects_after_the_relay_drops_and_an_offboarded_engine_is_refused() {
    install_crypto();
    let t = lab_with(0).await;
    let engine = t.lab.engine.clone().unwrap();
    assert!(engine.connected());
    // the tenant drops every link (a relay outage): the engine comes back by itself
    t.lab.tenant.relay.disconnect_all();
    let admin = t.admin_token().await;
    assert!(until(|| t.lab.tenant.relay.any_connected()).await, "the engine reconnects");
    assert_eq!(t.graph_reset(&admin, "user1@testlab.example", "After-Outage-Pass-1").await, "succeeded");
    assert!(t.ad_accepts("TESTLAB\\User1", "After-Outage-Pass-1").await);
    // offboarding: the registration is gone, the engine cannot connect again
    let (_, list) = t.call("GET", "/lab/writeback/engines", Some(&admin), None).await;
    assert_eq!(list["value"][0]["connected"], true);
    let id = engine.id().to_string();
    assert_eq!(t.call("DELETE", &format!("/lab/writeback/engines/{id}"), Some(&admin), None).await.0, 204);
    let refused_before = engine.events().iter().filter(|e| matches!(e.id, 32002 | 32014)).count();
    t.lab.tenant.relay.disconnect_all();
    // the engine tries again and is turned away (its connection errors are logged)
    assert!(until(|| engine.events().iter().filter(|e| matches!(e.id, 32002 | 32014)).count() > refused_before).await);
    assert!(!t.lab.tenant.relay.any_connected());
    assert_eq!(t.graph_reset(&admin, "user4@testlab.example", "Offboarded-Pass-1").await, "failed");
    assert!(t.ad_accepts("TESTLAB\\User4", "Copper-River-93").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_engines_registered_the_tenant_uses_a_connected_one() {
    install_crypto();
    let t = lab_with(0).await;
    let first = t.lab.engine.clone().unwrap();
    // a second Connect server onboards with its own key (high availability)
    let info = t.info().clone();
    let cfg = writeback::Config {
        tenant_https: info.tenant.https.clone(),
        tenant_id: info.tenant.tenant_id.clone(),
        client_id: info.tenant.client_id.clone(),
        ca_pem: t.ca_pem(),
        ldaps: info.adds.ldaps.clone(),
        ldap: None,
        connector_dn: info.users.iter().find(|u| u.sam == labkit::testlab::CONNECTOR).unwrap().dn.clone(),
        connector_password: labkit::testlab::CONNECTOR_PASSWORD.into(),
        base_dn: info.adds.base_dn.clone(),
        source_anchor: writeback::SourceAnchor::ObjectGuid,
        sync_scope: vec![],
        clock: t.lab.clock.clone(),
        kind: relay::AgentKind::ConnectSync,
        domain_controllers: vec![],
        directories: vec![],
    };
    let log = writeback::EventLog::new(t.lab.clock.clone());
    // the OS user's engine key, as a second Connect server of the same user would have it
    let key = labkit::userkeys::get().engine.clone();
    let reg = writeback::onboard(&cfg, key, &info.tenant.admin_upn, &info.tenant.admin_password, &log).await.unwrap();
    let second = writeback::Engine::start(cfg, reg, log).unwrap();
    assert!(second.wait_connected(Duration::from_secs(10)).await);
    let admin = t.admin_token().await;
    let (_, list) = t.call("GET", "/lab/writeback/engines", Some(&admin), None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 2);

    // the first one stops: the second carries the reset
    first.stop();
    assert!(until(|| t.lab.tenant.relay.status().iter().filter(|e| e["connected"] == true).count() == 1).await);
    assert_eq!(t.graph_reset(&admin, "user1@testlab.example", "Carried-By-Second-1").await, "succeeded");
    assert!(t.ad_accepts("TESTLAB\\User1", "Carried-By-Second-1").await);
    assert_eq!(second.events().iter().filter(|e| e.id == 31010).count(), 1);
    assert_eq!(first.events().iter().filter(|e| e.id == 31010).count(), 0);
    second.shutdown();
}

/// The commit point's own check (issue 37): a service stopped while the connector's search is
/// out writes nothing. The DC answers searches late; the service is stopped once the engine's
/// trace shows the search went out, so every check before the search has passed and only the
/// commit point, immediately before the modify, is left to refuse: 32000 (cancelled), the
/// administrator's reset fails, and AD keeps the old password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stopped_while_the_connector_searches_writes_nothing() {
    install_crypto();
    let t = lab_with(0).await;
    let engine = t.lab.engine.clone().unwrap();
    let (status, _) = t.lab_call("POST", "/lab/adds/fault", Some(serde_json::json!({ "searchDelayMs": 1500 }))).await;
    assert_eq!(status, 200);
    let admin = t.admin_token().await;
    let seen = engine.trace_since(0).last().map(|l| l.seq).unwrap_or(0);
    let stop = async {
        let searching = || engine.trace_since(seen).iter().any(|l| l.text.starts_with("search for sourceAnchor"));
        assert!(until(searching).await, "the connector's search went out");
        engine.stop();
    };
    let (outcome, ()) = tokio::join!(t.graph_reset(&admin, "user1@testlab.example", "Never-Written-Pass-1"), stop);
    assert_eq!(outcome, "failed");
    let events = engine.events();
    assert!(
        events.iter().any(|e| e.id == 32000 && e.message.contains("cancelled")),
        "{:?}",
        events.iter().map(|e| (e.id, &e.message)).collect::<Vec<_>>()
    );
    assert!(!events.iter().any(|e| e.id == 31010), "no reset succeeded");
    t.lab_call("POST", "/lab/adds/fault", Some(serde_json::json!({ "searchDelayMs": 0 }))).await;
    assert!(t.ad_accepts("TESTLAB\\User1", &t.password_of("User1")).await, "AD keeps the old password");
    assert!(!t.ad_accepts("TESTLAB\\User1", "Never-Written-Pass-1").await);
}

/// Password hash sync and writeback take turns (issue 37): a writeback waits while a hash
/// export holds the gate, so that the export's older hash cannot overwrite the password the
/// writeback put in the cloud. User1's password is changed on-premises; a delta cycle imports
/// it and holds its export (the export-delay fault); an administrator's reset is written back
/// meanwhile. It lands after the export, and both sides end on it. (Without the gate the
/// reset lands first and the export puts the on-premises change over it in the cloud.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writeback_waits_for_a_hash_export_that_holds_the_gate() {
    install_crypto();
    let t = lab_with(0).await;
    let engine = t.lab.engine.clone().unwrap();
    let mut l = t.admin(Via::Ldaps).await;
    let dn = t.lab.info.users.iter().find(|u| u.sam == "User1").map(|u| u.dn.clone()).expect("User1");
    let pw = |p: &str| std::collections::HashSet::from([format!("\"{p}\"").encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()]);
    let r = l.modify(&dn, vec![ldap3::Mod::Replace(b"unicodePwd".to_vec(), pw("OnPrem-Change-Pass-1"))]).await.unwrap();
    assert_eq!(r.rc, 0, "{}", r.text);
    let (s, _) = t.lab_call("POST", "/lab/engine/control", Some(serde_json::json!({ "action": "export-delay", "ms": 1500 }))).await;
    assert_eq!(s, 200);
    let exports_before = engine.events().iter().filter(|e| e.id == 656).count();
    let admin = t.admin_token().await;
    let sync = t.lab_call("POST", "/lab/sync", Some(serde_json::json!({ "policyType": "Delta" })));
    let reset = async {
        let exporting = || engine.events().iter().filter(|e| e.id == 656).count() > exports_before;
        assert!(until(exporting).await, "the cycle's export holds the gate");
        t.graph_reset(&admin, "user1@testlab.example", "Cloud-Reset-Pass-2").await
    };
    let ((status, report), outcome) = tokio::join!(sync, reset);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passwords"], 1, "{report}");
    assert_eq!(outcome, "succeeded");
    assert!(t.ad_accepts("TESTLAB\\User1", "Cloud-Reset-Pass-2").await);
    assert!(t.cloud_accepts("user1@testlab.example", "Cloud-Reset-Pass-2").await, "the export's older hash is not over it");
    assert!(!t.cloud_accepts("user1@testlab.example", "OnPrem-Change-Pass-1").await);
}
