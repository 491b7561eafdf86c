//! Self-service password reset over HTTP, as the portal's steps: who are you, the
//! verification gates with codes from the lab outbox, the new password — and the SSPR_xxxx
//! errors Entra shows, including what synced users get while no writeback engine is there.

use std::time::Duration;

use hybrid_lab_tests::{TestLab, Via, install_crypto};
use serde_json::{Value, json};

async fn post(t: &TestLab, path: &str, body: Value) -> (u16, Value) {
    let r = t.http().post(format!("{}/lab/sspr{path}", t.info().tenant.https)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

async fn latest_code(t: &TestLab, to: &str) -> String {
    let r: Value = t.lab_call("GET", &format!("/lab/outbox?to={to}"), None).await.1;
    r["value"].as_array().unwrap().last().expect("a message")["code"].as_str().unwrap().to_string()
}

async fn admin_patch(t: &TestLab, path: &str, body: Value) -> u16 {
    let token = t.admin_token().await;
    let url = format!("{}{path}", t.info().tenant.https);
    t.http().patch(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_only_user_resets_through_the_gates_with_a_code_from_the_outbox() {
    install_crypto();
    let t = TestLab::start().await;
    let upn = "user5@testlab.onmicrosoft.com";
    let (s, flow) = post(&t, "/flows", json!({ "userPrincipalName": upn })).await;
    assert_eq!(s, 201, "{flow}");
    assert_eq!(flow["gatesRequired"], 1);
    assert_eq!(flow["methods"], json!([{ "type": "email", "display": "u****@alt.testlab.example" }]));
    assert_eq!(flow["unlockOffered"], false, "cloud-only: nothing to unlock on-premises");
    let id = flow["id"].as_str().unwrap();

    // no reset before the gate
    assert_eq!(post(&t, &format!("/flows/{id}/reset"), json!({ "newPassword": "Fresh-Cloud-Pass-1" })).await.0, 409);
    assert_eq!(post(&t, &format!("/flows/{id}/codes"), json!({ "method": "email" })).await.0, 202);
    let code = latest_code(&t, "user5@alt.testlab.example").await;
    assert_eq!(code.len(), 8);
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    let (s, e) = post(&t, &format!("/flows/{id}/verify"), json!({ "method": "email", "code": wrong })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (400, "InvalidCode"));
    let (s, v) = post(&t, &format!("/flows/{id}/verify"), json!({ "method": "email", "code": code })).await;
    assert_eq!((s, v), (200, json!({ "gatesPassed": 1, "gatesRequired": 1 })));
    // the cloud rules and Password Protection still apply, and a refusal changes nothing
    let (s, e) = post(&t, &format!("/flows/{id}/reset"), json!({ "newPassword": "password" })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (400, "PasswordPolicyViolation"));
    assert!(e["error"]["supportCode"].is_string());
    assert_eq!(t.token(upn, "Amber-Cloud-62!").await.0, 200);
    let (s, r) = post(&t, &format!("/flows/{id}/reset"), json!({ "newPassword": "Fresh-Cloud-Pass-1" })).await;
    assert_eq!((s, r["result"].as_str().unwrap()), (200, "succeeded"));
    assert_eq!(t.token(upn, "Fresh-Cloud-Pass-1").await.0, 200);
    assert_eq!(t.token(upn, "Amber-Cloud-62!").await.0, 400);
    // the flow is over
    assert_eq!(post(&t, &format!("/flows/{id}/reset"), json!({ "newPassword": "Again-Cloud-Pass-2" })).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_expire_and_five_wrong_codes_block_for_a_day() {
    install_crypto();
    let t = TestLab::start().await;
    let upn = "user5@testlab.onmicrosoft.com";
    let (_, flow) = post(&t, "/flows", json!({ "userPrincipalName": upn })).await;
    let id = flow["id"].as_str().unwrap().to_string();
    post(&t, &format!("/flows/{id}/codes"), json!({ "method": "email" })).await;
    let code = latest_code(&t, "user5@alt.testlab.example").await;
    t.lab.clock.advance(Duration::from_secs(6 * 60)); // codes live five minutes
    let (s, _) = post(&t, &format!("/flows/{id}/verify"), json!({ "method": "email", "code": code })).await;
    assert_eq!(s, 400);
    for _ in 0..3 {
        assert_eq!(post(&t, &format!("/flows/{id}/verify"), json!({ "method": "email", "code": "99999999" })).await.0, 400);
    }
    let (s, e) = post(&t, &format!("/flows/{id}/verify"), json!({ "method": "email", "code": "99999999" })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (429, "Blocked"));
    assert_eq!(post(&t, "/flows", json!({ "userPrincipalName": upn })).await.0, 429);
    t.lab.clock.advance(Duration::from_secs(24 * 3600 + 60));
    assert_eq!(post(&t, "/flows", json!({ "userPrincipalName": upn })).await.0, 201);
    // sessions live fifteen minutes
    let (_, flow) = post(&t, "/flows", json!({ "userPrincipalName": upn })).await;
    t.lab.clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(post(&t, &format!("/flows/{}/codes", flow["id"].as_str().unwrap()), json!({ "method": "email" })).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_decides_who_may_start_and_administrators_always_need_two_gates() {
    install_crypto();
    let t = TestLab::start().await;
    // administrators: two gates, whatever the user policy says
    let (s, flow) = post(&t, "/flows", json!({ "userPrincipalName": "helpdesk@testlab.example" })).await;
    assert_eq!((s, flow["gatesRequired"].as_u64()), (201, Some(2)));
    assert_eq!(flow["methods"].as_array().unwrap().len(), 2);
    // two methods required: a user with one registered method cannot reset (SSPR_0014)
    assert_eq!(admin_patch(&t, "/lab/sspr/policy", json!({ "methodsRequired": 2 })).await, 204);
    let (s, e) = post(&t, "/flows", json!({ "userPrincipalName": "user5@testlab.onmicrosoft.com" })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (403, "SSPR_0014"));
    // SSPR off for users (SSPR_0009); administrators keep it (the two-gate admin policy)
    assert_eq!(admin_patch(&t, "/lab/sspr/policy", json!({ "enabled": "None", "methodsRequired": 1 })).await, 204);
    let (s, e) = post(&t, "/flows", json!({ "userPrincipalName": "user5@testlab.onmicrosoft.com" })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (403, "SSPR_0009"));
    assert_eq!(post(&t, "/flows", json!({ "userPrincipalName": "labadmin@testlab.onmicrosoft.com" })).await.0, 201);
    // bad settings change nothing
    assert_eq!(admin_patch(&t, "/lab/sspr/policy", json!({ "enabled": "All", "methodsRequired": 3 })).await, 400);
    let (s, e) = post(&t, "/flows", json!({ "userPrincipalName": "user5@testlab.onmicrosoft.com" })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (403, "SSPR_0009"));
    assert_eq!(post(&t, "/flows", json!({ "userPrincipalName": "nobody@testlab.example" })).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_users_need_writeback_and_without_an_engine_nothing_changes_anywhere() {
    install_crypto();
    let t = TestLab::start().await;
    // the sync side has not switched writeback on: SSPR_0010
    let (s, e) = post(&t, "/flows", json!({ "userPrincipalName": "user1@testlab.example" })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (403, "SSPR_0010"));
    // switched on (as the engine's onboarding will), unlock offered, but no engine connected
    let tid = t.info().tenant.tenant_id.clone();
    assert_eq!(
        admin_patch(
            &t,
            &format!("/v1.0/directory/onPremisesSynchronization/{tid}"),
            json!({ "features": { "passwordWritebackEnabled": true } })
        )
        .await,
        204
    );
    assert_eq!(admin_patch(&t, "/lab/sspr/onPremisesIntegration", json!({ "allowUnlockWithoutReset": true })).await, 204);
    // the writeback service is down: said at "Who are you?", before any gate or method
    let (s, e) = post(&t, "/flows", json!({ "userPrincipalName": "user1@testlab.example" })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (502, "SSPR_0030"), "{e}");
    assert!(e.get("methods").is_none() && e.get("id").is_none(), "{e}");
    assert!(t.lab_call("GET", "/lab/outbox", None).await.1["value"].as_array().unwrap().is_empty(), "no code was sent");
    // nothing half-applied: the cloud and AD both keep the old password
    assert_eq!(t.token("user1@testlab.example", "Summer-Lake-41").await.0, 200);
    assert_eq!(t.token("user1@testlab.example", "Written-Back-Pass-1").await.0, 400);
    let mut l = t.connect(Via::Ldaps).await;
    assert_eq!(l.simple_bind("TESTLAB\\User1", "Summer-Lake-41").await.unwrap().rc, 0);
    // and the audit says so
    let token = t.admin_token().await;
    let log: Value = t
        .http()
        .get(format!("{}/auditLogs/directoryAudits", t.info().tenant.graph))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<(String, String, String)> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["activityDisplayName"].as_str().unwrap().into(),
                e["result"].as_str().unwrap().into(),
                e["resultReason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(names, vec![("Self-service password reset flow activity progress".into(), "failure".into(), "SSPR_0030".into())]);
    assert_eq!(log["value"][0]["loggedByService"], "Self-service Password Management");
}

/// POSTs an assignLicense body for user5's cloud twin; the status.
async fn assign_license(t: &TestLab, bearer: &str, body: &Value) -> u16 {
    let url = format!("{}/users/user5@testlab.onmicrosoft.com/assignLicense", t.info().tenant.graph);
    t.http().post(url).bearer_auth(bearer).json(body).send().await.unwrap().status().as_u16()
}

async fn get_json(t: &TestLab, url: String, bearer: &str) -> Value {
    t.http().get(url).bearer_auth(bearer).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_phone_makes_the_two_method_policy_reachable() {
    install_crypto();
    let t = TestLab::start().await;
    let graph = t.info().tenant.graph.clone();
    assert_eq!(admin_patch(&t, "/lab/sspr/policy", json!({ "methodsRequired": 2 })).await, 204);
    let upn = "user5@testlab.onmicrosoft.com";
    assert_eq!(post(&t, "/flows", json!({ "userPrincipalName": upn })).await.1["error"]["code"], "SSPR_0014");

    let me = t.user_token(upn, "Amber-Cloud-62!").await;
    let list: Value = get_json(&t, format!("{graph}/users/{upn}/authentication/emailMethods"), &me).await;
    assert_eq!(list["value"], json!([{ "id": "3ddfcfc8-9383-446f-83cc-3ab9be4be18f", "emailAddress": "user5@alt.testlab.example" }]));
    // bad numbers and types are refused; then a mobile phone is registered
    for body in
        [json!({ "phoneNumber": "4255550155", "phoneType": "mobile" }), json!({ "phoneNumber": "+1 4255550155", "phoneType": "office" })]
    {
        let r =
            t.http().post(format!("{graph}/users/{upn}/authentication/phoneMethods")).bearer_auth(&me).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
    }
    let r = t
        .http()
        .post(format!("{graph}/users/{upn}/authentication/phoneMethods"))
        .bearer_auth(&me)
        .json(&json!({ "phoneNumber": "+1 4255550155", "phoneType": "mobile" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let added: Value = r.json().await.unwrap();
    assert_eq!((added["id"].as_str().unwrap(), added["phoneType"].as_str().unwrap()), ("3179e48a-750b-4051-897c-87b9720928f7", "mobile"));
    let again = t
        .http()
        .post(format!("{graph}/users/{upn}/authentication/phoneMethods"))
        .bearer_auth(&me)
        .json(&json!({ "phoneNumber": "+1 4255550156", "phoneType": "mobile" }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 400, "one mobile phone per user");
    // now two gates are possible
    let (s, flow) = post(&t, "/flows", json!({ "userPrincipalName": upn })).await;
    assert_eq!((s, flow["gatesRequired"].as_u64(), flow["methods"].as_array().map(Vec::len)), (201, Some(2), Some(2)));

    // who may look: the role table again (Helpdesk reaches users, not Global Administrators)
    let hd = t.user_token("helpdesk@testlab.example", "Help-Desk-Pa55!").await;
    let phones: Value = get_json(&t, format!("{graph}/users/user1@testlab.example/authentication/phoneMethods"), &hd).await;
    assert_eq!(phones["value"][0]["phoneType"], "mobile");
    let r = t
        .http()
        .get(format!("{graph}/users/labadmin@testlab.onmicrosoft.com/authentication/phoneMethods"))
        .bearer_auth(&hd)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let other =
        t.http().get(format!("{graph}/users/user1@testlab.example/authentication/emailMethods")).bearer_auth(&me).send().await.unwrap();
    assert_eq!(other.status().as_u16(), 403, "a user sees only their own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_premium_licence_a_user_cannot_reset() {
    install_crypto();
    let t = TestLab::start().await;
    let graph = t.info().tenant.graph.clone();
    let admin = t.admin_token().await;
    let p1 = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4";
    let user: Value = get_json(&t, format!("{graph}/users/user5@testlab.onmicrosoft.com?$select=assignedLicenses"), &admin).await;
    assert_eq!(user["assignedLicenses"], json!([{ "disabledPlans": [], "skuId": p1 }]), "the Test Lab Guide's P1 trial");
    let remove = json!({ "addLicenses": [], "removeLicenses": [p1] });
    assert_eq!(assign_license(&t, &admin, &remove).await, 200);
    let (s, e) = post(&t, "/flows", json!({ "userPrincipalName": "user5@testlab.onmicrosoft.com" })).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (403, "SSPR_0012"));
    // an unknown SKU is refused and changes nothing; P2 brings SSPR back
    let bogus = json!({ "addLicenses": [{ "skuId": "00000000-0000-0000-0000-000000000042" }], "removeLicenses": [] });
    assert_eq!(assign_license(&t, &admin, &bogus).await, 400);
    let p2 = json!({ "addLicenses": [{ "skuId": "84a661c4-e949-4bd2-a560-ed7766fcaf2b" }], "removeLicenses": [] });
    assert_eq!(assign_license(&t, &admin, &p2).await, 200);
    assert_eq!(post(&t, "/flows", json!({ "userPrincipalName": "user5@testlab.onmicrosoft.com" })).await.0, 201);
}
