//! Pass-through authentication end to end: the agents register with their own keys, the
//! token endpoint's sign-ins of synced users go to one of them, the agent binds to the DC as
//! the user, and AD's answer is what the user and the sign-in log see — with real clients
//! (reqwest for the tenant, ldap3 for AD), no part mocked.

use hybrid_lab_tests::{TestLab, install_crypto};
use labkit::SignInMethod;
use serde_json::{Value, json};

const USER1: (&str, &str) = ("user1@testlab.example", "Summer-Lake-41");
const USER5: (&str, &str) = ("user5@testlab.onmicrosoft.com", "Amber-Cloud-62!");

fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or(0)
}

async fn pta_lab(agents: usize) -> TestLab {
    TestLab::start_with(|c| {
        c.engine = true;
        c.sign_in = SignInMethod::PassThroughAuthentication;
        c.pta_agents = agents;
    })
    .await
}

/// The newest sign-in log entry for `upn`.
async fn last_sign_in(t: &TestLab, upn: &str) -> Value {
    let admin = t.admin_token().await;
    let (s, log) = t.call("GET", &format!("/v1.0/auditLogs/signIns?$filter=userPrincipalName eq '{upn}'&$top=1"), Some(&admin), None).await;
    assert_eq!(s, 200, "{log}");
    log["value"][0].clone()
}

async fn bad_pwd_count(t: &TestLab, sam: &str) -> i64 {
    use ldap3::{Scope, SearchEntry};
    let mut l = t.admin(hybrid_lab_tests::Via::Ldaps).await;
    let (rs, _) = l
        .search(&t.info().adds.base_dn, Scope::Subtree, &format!("(sAMAccountName={sam})"), vec!["badPwdCount"])
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(rs.into_iter().next().expect("the user"));
    e.attrs.get("badPwdCount").and_then(|v| v[0].parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_users_sign_in_is_validated_by_an_agent_against_ad() {
    install_crypto();
    let t = pta_lab(0).await;
    assert_eq!(t.info().sign_in, SignInMethod::PassThroughAuthentication);
    assert_eq!(t.info().pta_agents.len(), 1, "Connect's agent");
    let agent = t.info().pta_agents[0].id.clone();

    let (s, body) = t.token(USER1.0, USER1.1).await;
    assert_eq!(s, 200, "{body}");
    let e = last_sign_in(&t, USER1.0).await;
    assert_eq!(e["status"]["errorCode"], 0, "{e}");
    assert_eq!(e["authenticationDetails"][0]["authenticationMethodDetail"], "Pass-through Authentication");
    assert_eq!(e["authenticationProcessingDetails"][0]["value"], agent.as_str());

    // a wrong password is a failed bind in AD: badPwdCount counts it
    let before = bad_pwd_count(&t, "User1").await;
    let (s, body) = t.token(USER1.0, "Wrong-Pass-1").await;
    assert_eq!((s, aadsts(&body)), (400, 50126), "{body}");
    assert_eq!(bad_pwd_count(&t, "User1").await, before + 1, "the agent's bind counted in AD");
    let e = last_sign_in(&t, USER1.0).await;
    assert_eq!(e["status"]["errorCode"], 50126);

    // a cloud-only user still signs in against the cloud
    let (s, _) = t.token(USER5.0, USER5.1).await;
    assert_eq!(s, 200);
    assert_eq!(last_sign_in(&t, USER5.0).await["authenticationDetails"][0]["authenticationMethodDetail"], "Password in the cloud");

    // the agent's trace line names the request and Win32's reason
    let (_, st) = t.lab_call("GET", "/lab/engine/pta", None).await;
    let trace = st["trace"].as_array().unwrap();
    assert!(trace.iter().any(|l| l["message"].as_str().unwrap().contains("Reason: '1326'")), "{st}");
    assert_eq!(st["agents"][0]["counters"]["failed"], 1, "{st}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_set_in_ad_works_at_once_with_pta_and_not_before_hash_sync_with_phs() {
    install_crypto();
    let t = TestLab::start_with(|c| c.engine = true).await;
    let mut admin = t.admin(hybrid_lab_tests::Via::Ldaps).await;
    let dn = t.info().users.iter().find(|u| u.sam == "User1").unwrap().dn.clone();
    let pwd: Vec<u8> = "\"Fresh-River-93\"".encode_utf16().flat_map(u16::to_le_bytes).collect();
    use std::collections::HashSet;
    admin.modify(&dn, vec![ldap3::Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([pwd]))]).await.unwrap().success().unwrap();
    // password hash sync: the cloud still holds the old hash until the next cycle
    assert_eq!(t.token(USER1.0, "Fresh-River-93").await.0, 400);
    // Connect's "Change user sign-in" task: pass-through authentication
    let admin_upn = t.info().tenant.admin_upn.clone();
    let admin_pw = t.info().tenant.admin_password.clone();
    let (s, r) = t
        .lab_call("POST", "/lab/engine/sign-in", Some(json!({ "method": "pta", "userPrincipalName": admin_upn, "password": admin_pw })))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(t.token(USER1.0, "Fresh-River-93").await.0, 200, "AD's password, at once");
    assert_eq!(aadsts(&t.token(USER1.0, USER1.1).await.1), 50126, "no fallback to the old cloud hash");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_faults_answer_microsofts_8000x_codes_and_count_nothing() {
    install_crypto();
    let t = pta_lab(1).await;
    assert_eq!(t.info().pta_agents.len(), 2);
    let fault = |body: Value| async { t.lab_call("POST", "/lab/engine/pta/faults", Some(body)).await };

    // one of two stopped: the other takes every sign-in
    let (s, r) = fault(json!({ "agent": "CONNECT1", "stopped": true })).await;
    assert_eq!(s, 200, "{r}");
    let admin = t.admin_token().await;
    let (_, list) = t.call("GET", "/lab/pta/agents", Some(&admin), None).await;
    let status: Vec<&str> = list["value"].as_array().unwrap().iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["inactive", "active"]);
    for _ in 0..3 {
        assert_eq!(t.token(USER1.0, USER1.1).await.0, 200);
    }
    // all stopped: 80001
    fault(json!({ "agent": "all", "stopped": true })).await;
    let before = bad_pwd_count(&t, "User1").await;
    assert_eq!(aadsts(&t.token(USER1.0, USER1.1).await.1), 80001);
    fault(json!({ "agent": "all", "stopped": false })).await;
    // the wrong key: 80010
    fault(json!({ "agent": "all", "wrongKey": true })).await;
    assert_eq!(aadsts(&t.token(USER1.0, USER1.1).await.1), 80010);
    fault(json!({ "agent": "all", "wrongKey": false, "directoryUnreachable": true })).await;
    assert_eq!(aadsts(&t.token(USER1.0, "Wrong-Pass-2").await.1), 80007);
    fault(json!({ "agent": "all", "directoryUnreachable": false, "delayMs": 400 })).await;
    let (s, r) = t.lab_call("PATCH", "/lab/pta/settings", Some(json!({ "timeoutMs": 100 }))).await;
    assert_eq!(s, 204, "{r}");
    assert_eq!(aadsts(&t.token(USER1.0, USER1.1).await.1), 80002);
    assert_eq!(bad_pwd_count(&t, "User1").await, before, "no fault reached AD with a wrong password");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pta_cannot_be_enabled_without_an_active_agent_and_needs_a_hybrid_administrator() {
    install_crypto();
    let t = TestLab::start_with(|c| c.engine = true).await;
    let admin = t.admin_token().await;
    let (s, e) = t.call("PATCH", "/lab/pta", Some(&admin), Some(json!({ "enabled": true }))).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("no Authentication Agent is active"), "{e}");
    let user = t.user_token(USER1.0, USER1.1).await;
    let (s, _) = t.call("GET", "/lab/pta", Some(&user), None).await;
    assert_eq!(s, 403);
    let (s, f) = t.call("GET", "/lab/pta", Some(&admin), None).await;
    assert_eq!((s, f["enabled"].as_bool()), (200, Some(false)));
    t.stop().await;
}

/// Microsoft's PTA FAQ: with an expired on-premises password the user may change it in the
/// cloud when writeback is on; with writeback off the sign-in page says "Your organization
/// doesn't allow you to update your password on this site…".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_on_premises_password_is_changed_here_only_with_writeback() {
    install_crypto();
    let t = pta_lab(0).await;
    let mut admin = t.admin(hybrid_lab_tests::Via::Ldaps).await;
    let dn = t.info().users.iter().find(|u| u.sam == "User1").unwrap().dn.clone();
    let zero = std::collections::HashSet::from([b"0".to_vec()]);
    admin.modify(&dn, vec![ldap3::Mod::Replace(b"pwdLastSet".to_vec(), zero)]).await.unwrap().success().unwrap();
    let sign_in_page = || async {
        let r = t
            .http()
            .post(format!("{}/portal/signin", t.info().tenant.https))
            .form(&[("user", USER1.0), ("password", USER1.1)])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (s, page) = sign_in_page().await;
    assert_eq!(s, 200);
    assert!(page.contains("current_password"), "the change is offered: {page}");

    let token = t.admin_token().await;
    let (s, _) = t.call("PATCH", "/lab/sspr/onPremisesIntegration", Some(&token), Some(json!({ "writeBackPasswords": false }))).await;
    assert!((200..300).contains(&s));
    let (_, body) = t.token(USER1.0, USER1.1).await;
    assert_eq!(aadsts(&body), 50144);
    assert!(body["error_description"].as_str().unwrap().contains("doesn't allow you to update your password on this site"), "{body}");
    let (s, page) = sign_in_page().await;
    assert_eq!(s, 401);
    assert!(page.contains("update your password on this site") && !page.contains("current_password"), "{page}");
    t.stop().await;
}

/// Each agent registers its own key (Connect's and the standalone ones differ), a tenant
/// takes at most 40 agents (Microsoft's PTA quick start), and registering needs a Hybrid
/// Identity Administrator or a Global Administrator — a plain user's token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_register_their_own_keys_and_a_tenant_takes_at_most_forty() {
    install_crypto();
    let t = pta_lab(1).await;
    let agents = t.lab.agents.clone().unwrap().all();
    let keys: std::collections::HashSet<Vec<u8>> = [0, 1]
        .iter()
        .map(|n| rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_der(&labkit::userkeys::agent(*n)).unwrap().as_bytes().to_vec())
        .collect();
    assert_eq!((agents.len(), keys.len()), (2, 2), "two agents, two keys");
    let public = relay::public_key_to_b64(&rsa::RsaPublicKey::from(&labkit::userkeys::agent(0)));
    let body = |n: usize| json!({ "machineName": format!("EXTRA{n}"), "publicKey": public });
    let user = t.user_token(USER1.0, USER1.1).await;
    let (s, _) = t.call("POST", "/lab/pta/agents", Some(&user), Some(body(0))).await;
    assert_eq!(s, 403, "a plain user registers no agent");
    let admin = t.admin_token().await;
    for n in 2..40 {
        let (s, r) = t.call("POST", "/lab/pta/agents", Some(&admin), Some(body(n))).await;
        assert_eq!(s, 201, "agent {}: {r}", n + 1);
        assert!(r["credential"].as_str().unwrap().starts_with(r["id"].as_str().unwrap()), "{r}");
    }
    let (s, r) = t.call("POST", "/lab/pta/agents", Some(&admin), Some(body(40))).await;
    assert_eq!(s, 400, "the 41st: {r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("40 Authentication Agents"), "{r}");
    let (_, list) = t.call("GET", "/lab/pta/agents", Some(&admin), None).await;
    let list = list["value"].as_array().unwrap();
    assert_eq!(list.len(), 40);
    assert_eq!(list.iter().filter(|a| a["status"] == "active").count(), 2, "registered is not connected");
    // the sign-ins still go to a connected agent; the 38 without a link are sealed for and skipped
    assert_eq!(t.token(USER1.0, USER1.1).await.0, 200);
    // offboarding one makes room again
    let id = list[39]["id"].as_str().unwrap();
    let (s, _) = t.call("DELETE", &format!("/lab/pta/agents/{id}"), Some(&admin), None).await;
    assert_eq!(s, 204);
    assert_eq!(t.call("POST", "/lab/pta/agents", Some(&admin), Some(body(41))).await.0, 201);
    t.stop().await;
}

/// Connect's "Change user sign-in" authenticates with the credentials it is given, as the
/// wizard on the Connect server does: a Hybrid Identity Administrator runs it without being
/// the lab's administrator (the admin center's pages call it with their own sign-in), a user
/// without the role is refused and nothing changes, and no credentials at all change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_identity_administrator_runs_change_user_sign_in() {
    install_crypto();
    let t = TestLab::start_with(|c| c.engine = true).await;
    let task = |user: &str, password: &str| json!({ "method": "pta", "userPrincipalName": user, "password": password });
    let (s, r) = t.call("POST", "/lab/engine/sign-in", None, Some(task("", ""))).await;
    assert_eq!(s, 400, "{r}");
    let (s, r) = t.call("POST", "/lab/engine/sign-in", None, Some(task(USER1.0, USER1.1))).await;
    assert_eq!(s, 400, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("HTTP 403"), "{r}");
    let admin = t.admin_token().await;
    let (_, f) = t.call("GET", "/lab/pta", Some(&admin), None).await;
    assert_eq!(f["enabled"], false);
    let user1 = t.call("GET", "/v1.0/users/user1@testlab.example", Some(&admin), None).await.1["id"].as_str().unwrap().to_string();
    let hia = json!({ "principalId": user1, "roleDefinitionId": "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2", "directoryScopeId": "/" });
    let (s, r) = t.call("POST", "/v1.0/roleManagement/directory/roleAssignments", Some(&admin), Some(hia)).await;
    assert_eq!(s, 201, "{r}");
    let (s, r) = t.call("POST", "/lab/engine/sign-in", None, Some(task(USER1.0, USER1.1))).await;
    assert_eq!(s, 200, "{r}");
    let (_, f) = t.call("GET", "/lab/pta", Some(&admin), None).await;
    assert_eq!((f["enabled"].as_bool(), f["agents"][0]["machineName"].as_str()), (Some(true), Some("CONNECT1")), "{f}");
    t.stop().await;
}
