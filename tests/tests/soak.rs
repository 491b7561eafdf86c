//! A bounded soak (issue #15): users resetting their passwords through writeback without
//! pause while the lab's fault switches flip at random (relay delays around the deadline,
//! engine stops and starts, DC outages, hash syncs). At the end, with everything back on,
//! every user's password in AD and in the cloud is the last reset reported succeeded, and no
//! failed reset's password works anywhere. `HYBRID_LAB_SOAK_SECONDS` (default 20) sets how
//! long it runs, `HYBRID_LAB_SOAK_SEED` the switches' sequence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hybrid_lab_tests::{TestLab, Via, install_crypto};
use rand::{Rng, SeedableRng};
use serde_json::json;

const USERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_under_random_fault_switches_leave_both_sides_on_the_last_success() {
    install_crypto();
    let seconds: u64 = std::env::var("HYBRID_LAB_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("HYBRID_LAB_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let t = Arc::new(
        TestLab::start_with(|c| {
            c.engine = true;
            c.load_users = USERS;
        })
        .await,
    );
    let mut l = t.admin(Via::Ldaps).await;
    let set = |a: &'static str, v: &'static str| ldap3::Mod::Replace(a, std::collections::HashSet::from([v]));
    assert_eq!(
        l.modify(&t.base(), vec![set("minPwdAge", "0"), set("pwdHistoryLength", "0"), set("lockoutThreshold", "0")]).await.unwrap().rc,
        0
    );
    let admin = t.admin_token().await;
    let (s, _) = t.call("PATCH", "/lab/writeback/settings", Some(&admin), Some(json!({ "timeoutMs": 250 }))).await;
    assert_eq!(s, 204);
    let setting =
        json!({ "templateId": "5cf42378-d67d-4f36-ba46-e8b86229381d", "values": [{ "name": "LockoutThreshold", "value": "50" }] });
    assert_eq!(t.call("POST", "/v1.0/groupSettings", Some(&admin), Some(setting)).await.0, 201);
    let until = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicBool::new(false));
    let resets = Arc::new(AtomicUsize::new(0));
    let switched = Arc::new(tokio::sync::Notify::new());
    // the users: one reset after another, each user on its own
    let mut users = vec![];
    for u in 0..USERS {
        let (t, admin, done, resets, switched) = (t.clone(), admin.clone(), done.clone(), resets.clone(), switched.clone());
        users.push(tokio::spawn(async move {
            let upn = format!("load{u}@testlab.example");
            let (_, user) = t.call("GET", &format!("/v1.0/users/{upn}?$select=id"), Some(&admin), None).await;
            let id = user["id"].as_str().unwrap().to_string();
            let mut in_effect = format!("Load-Pass-{u}-Aa");
            let (mut succeeded, mut failed) = (0usize, vec![]);
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                let password = format!("Soak-{u}-{n}-Xq");
                n += 1;
                if t.graph_reset(&admin, &id, &password).await == "succeeded" {
                    in_effect = password;
                    succeeded += 1;
                } else {
                    failed.push(password);
                }
                if resets.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
                    switched.notify_one();
                }
            }
            (u, in_effect, succeeded, failed)
        }));
    }
    // the switches, thrown between resets, from a seeded sequence
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut thrown = 0;
    while Instant::now() < until {
        tokio::select! {
            _ = switched.notified() => {}
            _ = tokio::time::sleep_until(until.into()) => break,
        }
        // weighted so that the lab spends about half its time able to write back
        let (path, body) = match rng.gen_range(0..10) {
            0 | 1 => {
                let ms = [0u64, 0, 120, 240, 250, 260, 500][rng.gen_range(0..7)];
                ("/lab/engine/control", json!({ "action": "delay", "ms": ms }))
            }
            2 => ("/lab/engine/control", json!({ "action": "stop" })),
            3 | 4 => ("/lab/engine/control", json!({ "action": "start" })),
            5 => ("/lab/adds/fault", json!({ "state": "down" })),
            6 | 7 => ("/lab/adds/fault", json!({ "state": "up" })),
            _ => ("/lab/sync", json!({ "policyType": "Delta" })),
        };
        let (status, answer) = t.call("POST", path, Some(&admin), Some(body.clone())).await;
        assert!(status == 200 || (path == "/lab/sync" && status == 503), "{path} {body}: {status} {answer}");
        thrown += 1;
    }
    done.store(true, Ordering::SeqCst);
    let mut outcomes = vec![];
    for u in users {
        outcomes.push(u.await.unwrap());
    }
    // everything back on, one hash sync
    for (path, body) in [
        ("/lab/adds/fault", json!({ "state": "up" })),
        ("/lab/engine/control", json!({ "action": "delay", "ms": 0 })),
        ("/lab/engine/control", json!({ "action": "start" })),
        ("/lab/sync", json!({ "policyType": "Initial" })),
    ] {
        assert_eq!(t.call("POST", path, Some(&admin), Some(body)).await.0, 200, "{path}");
    }
    let (mut ok, mut bad) = (0, 0);
    for (u, in_effect, succeeded, failed) in &outcomes {
        let upn = format!("load{u}@testlab.example");
        let sam = format!("TESTLAB\\Load{u}");
        let mut l = t.connect(Via::Ldaps).await;
        let bound = l.simple_bind(&sam, in_effect).await.unwrap();
        // (AD's diagnostic tells a wrong password, 52e, from a locked or expired account)
        assert_eq!(bound.rc, 0, "{sam}: AD has the last succeeded reset: {}", bound.text);
        let (status, body) = t.token(&upn, in_effect).await;
        assert!(status == 200 || body["error_codes"][0] == 50055, "{upn}: the cloud has it too: {body}");
        // the latest failures (the cloud's smart lockout counts every wrong one tried)
        for f in failed.iter().rev().take(10) {
            assert_ne!(l.simple_bind(&sam, f).await.unwrap().rc, 0, "{sam}: failed {f} works in AD");
            let (status, body) = t.token(&upn, f).await;
            assert!(status != 200 && body["error_codes"][0] != 50055, "{upn}: failed {f} works in the cloud");
        }
        ok += succeeded;
        bad += failed.len();
    }
    eprintln!("soak: {seconds} s, {thrown} switches, {ok} resets succeeded, {bad} failed, all consistent");
    assert!(ok > 0 && bad > 0, "both outcomes occurred ({ok} succeeded, {bad} failed)");
}
