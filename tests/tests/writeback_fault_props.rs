//! Random interleavings of writeback requests with the lab's fault switches — relay delays
//! around the deadline, engine stops and starts (also while a request waits), DC outages,
//! password hash sync — and after every step: AD's password and the cloud's are the last
//! reset reported succeeded, and no password of a reset reported failed is in effect
//! anywhere (issue #15, item 1); and a reset with nothing in its way (service running, DC up,
//! no delay) is reported succeeded — so that a writeback that always failed could not pass
//! (issue 37). Few cases, each a whole lab: `PROPTEST_CASES` for more.

use std::collections::HashMap;
use std::time::Duration;

use hybrid_lab_tests::{TestLab, Via, with_engine_lab};
use proptest::prelude::*;
use serde_json::json;

/// How long the tenant waits for on-premises in these runs.
const TIMEOUT_MS: u64 = 250;
const USERS: [(&str, &str, &str); 2] =
    [("user1@testlab.example", "TESTLAB\\User1", "Summer-Lake-41"), ("user4@testlab.example", "TESTLAB\\User4", "Copper-River-93")];

#[derive(Clone, Debug)]
enum Step {
    /// An administrator's reset of user `u`.
    Reset(usize),
    /// The same, with a switch thrown while the request waits in the engine.
    ResetThen(usize, Switch),
    Switch(Switch),
    HashSync,
}

#[derive(Clone, Debug)]
enum Switch {
    Delay(u64),
    Stop,
    Start,
    DcDown,
    DcUp,
}

fn switch() -> impl Strategy<Value = Switch> {
    prop_oneof![
        // around the deadline, and well past it
        prop::sample::select(vec![0u64, 100, 240, 250, 260, 400]).prop_map(Switch::Delay),
        Just(Switch::Stop),
        Just(Switch::Start),
        Just(Switch::DcDown),
        Just(Switch::DcUp),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..USERS.len()).prop_map(Step::Reset),
        2 => ((0..USERS.len()), switch()).prop_map(|(u, s)| Step::ResetThen(u, s)),
        3 => switch().prop_map(Step::Switch),
        1 => Just(Step::HashSync),
    ]
}

async fn throw(t: &TestLab, token: &str, s: &Switch) {
    let (path, body) = match s {
        Switch::Delay(ms) => ("/lab/engine/control", json!({ "action": "delay", "ms": ms })),
        Switch::Stop => ("/lab/engine/control", json!({ "action": "stop" })),
        Switch::Start => ("/lab/engine/control", json!({ "action": "start" })),
        Switch::DcDown => ("/lab/adds/fault", json!({ "state": "down" })),
        Switch::DcUp => ("/lab/adds/fault", json!({ "state": "up" })),
    };
    let (status, answer) = t.call("POST", path, Some(token), Some(body)).await;
    // a start may find the DC down: the link still comes up (it is the tenant's)
    assert_eq!(status, 200, "{s:?}: {answer}");
    if matches!(s, Switch::Start) {
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while t.lab_call("GET", "/lab/engine", None).await.1["connected"] != true && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// What the switches thrown so far leave in a reset's way.
#[derive(Clone, Copy)]
struct Way {
    running: bool,
    dc_up: bool,
    delay: u64,
}

impl Way {
    fn after(self, s: &Switch) -> Way {
        match s {
            Switch::Delay(ms) => Way { delay: *ms, ..self },
            Switch::Stop => Way { running: false, ..self },
            Switch::Start => Way { running: true, ..self },
            Switch::DcDown => Way { dc_up: false, ..self },
            Switch::DcUp => Way { dc_up: true, ..self },
        }
    }

    fn clear(self) -> bool {
        self.running && self.dc_up && self.delay == 0
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 8, ..ProptestConfig::default() })]

    #[test]
    fn no_failed_writeback_is_ever_in_effect(steps in prop::collection::vec(step(), 4..14)) {
        with_engine_lab(|t, engine| async move {
            // every reset may succeed: no minimum age, no history, no lockout from the checks
            let mut l = t.admin(Via::Ldaps).await;
            let set = |a: &'static str, v: &'static str| ldap3::Mod::Replace(a, std::collections::HashSet::from([v]));
            let mods = vec![set("minPwdAge", "0"), set("pwdHistoryLength", "0"), set("lockoutThreshold", "0")];
            assert_eq!(l.modify(&t.base(), mods).await.unwrap().rc, 0);
            let admin = t.admin_token().await;
            let (s, _) = t.call("PATCH", "/lab/writeback/settings", Some(&admin), Some(json!({ "timeoutMs": TIMEOUT_MS }))).await;
            assert_eq!(s, 204);
            // the checks below try wrong passwords: smart lockout at its highest threshold
            let template = "5cf42378-d67d-4f36-ba46-e8b86229381d";
            let setting = json!({ "templateId": template, "values": [{ "name": "LockoutThreshold", "value": "50" }] });
            let (s, answer) = t.call("POST", "/v1.0/groupSettings", Some(&admin), Some(setting)).await;
            assert_eq!(s, 201, "{answer}");
            let mut ids = vec![];
            for (upn, _, _) in USERS {
                let (_, u) = t.call("GET", &format!("/v1.0/users/{upn}?$select=id"), Some(&admin), None).await;
                ids.push(u["id"].as_str().unwrap().to_string());
            }
            let mut in_effect: Vec<String> = USERS.iter().map(|u| u.2.to_string()).collect();
            let mut failed: HashMap<usize, Vec<String>> = HashMap::new();
            let mut way = Way { running: true, dc_up: true, delay: 0 };
            let mut clear_resets = 0;
            for (n, step) in steps.iter().enumerate() {
                let password = format!("Prop-Reset-{n}-Xq");
                match step {
                    Step::Reset(u) => {
                        let status = t.graph_reset(&admin, &ids[*u], &password).await;
                        if way.clear() {
                            assert_eq!(status, "succeeded", "step {n} {step:?}: nothing in the reset's way");
                            clear_resets += 1;
                        }
                        if status == "succeeded" { in_effect[*u] = password.clone() } else { failed.entry(*u).or_default().push(password.clone()) }
                    }
                    Step::ResetThen(u, s) => {
                        let request = t.graph_reset(&admin, &ids[*u], &password);
                        let then = async {
                            // thrown while the request is with the engine, if it gets there
                            let until = std::time::Instant::now() + Duration::from_millis(500);
                            while engine.in_flight() == 0 && std::time::Instant::now() < until {
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                            throw(&t, &admin, s).await;
                        };
                        let (status, ()) = tokio::join!(request, then);
                        if status == "succeeded" { in_effect[*u] = password.clone() } else { failed.entry(*u).or_default().push(password.clone()) }
                        way = way.after(s);
                    }
                    Step::Switch(s) => {
                        throw(&t, &admin, s).await;
                        way = way.after(s);
                    }
                    Step::HashSync => {
                        let (s, _) = t.call("POST", "/lab/sync", Some(&admin), Some(json!({ "policyType": "Delta" }))).await;
                        assert!([200, 503].contains(&s), "sync: {s}");
                    }
                }
                // the engine lets go of every request by itself
                let until = std::time::Instant::now() + Duration::from_secs(3);
                while engine.in_flight() > 0 && std::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                assert_eq!(engine.in_flight(), 0, "step {n} {step:?}: a request still held");
                for (u, (upn, sam, _)) in USERS.iter().enumerate() {
                    assert!(t.cloud_accepts(upn, &in_effect[u]).await, "step {n} {step:?}: the cloud has {upn}'s last succeeded password");
                    if way.dc_up {
                        assert!(t.ad_accepts(sam, &in_effect[u]).await, "step {n} {step:?}: AD has {upn}'s last succeeded password");
                    }
                    // (each failed password is tried once now and once at the end: the cloud's
                    // smart lockout counts wrong passwords)
                    if matches!(step, Step::Reset(x) | Step::ResetThen(x, _) if *x == u)
                        && let Some(f) = failed.get(&u).and_then(|f| f.last()).filter(|f| **f == password)
                    {
                        assert!(!t.cloud_accepts(upn, f).await, "step {n} {step:?}: a failed reset's password works in the cloud");
                        if way.dc_up {
                            assert!(!t.ad_accepts(sam, f).await, "step {n} {step:?}: a failed reset's password works in AD");
                        }
                    }
                }
            }
            // everything back on: a reset goes through; a hash sync: still the same passwords
            // on both sides
            throw(&t, &admin, &Switch::DcUp).await;
            throw(&t, &admin, &Switch::Delay(0)).await;
            throw(&t, &admin, &Switch::Start).await;
            let password = "Prop-Reset-End-Xq".to_string();
            assert_eq!(t.graph_reset(&admin, &ids[0], &password).await, "succeeded", "after {clear_resets} clear resets, with all back on");
            in_effect[0] = password;
            let (s, report) = t.call("POST", "/lab/sync", Some(&admin), Some(json!({ "policyType": "Initial" }))).await;
            assert_eq!(s, 200, "{report}");
            for (u, (upn, sam, _)) in USERS.iter().enumerate() {
                assert!(t.ad_accepts(sam, &in_effect[u]).await);
                assert!(t.cloud_accepts(upn, &in_effect[u]).await, "after hash sync, {upn}");
                for f in failed.get(&u).into_iter().flatten() {
                    assert!(!t.ad_accepts(sam, f).await && !t.cloud_accepts(upn, f).await, "after hash sync, {upn}'s failed {f}");
                }
            }
            // and the lab stops promptly from wherever the steps left it
            let started = std::time::Instant::now();
            tokio::time::timeout(Duration::from_secs(2), t.stop()).await.expect("the lab stops within 2 s");
            assert!(started.elapsed() < Duration::from_secs(2));
        });
    }
}
