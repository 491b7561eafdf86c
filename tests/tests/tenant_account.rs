//! A user's own password change (Graph and the sign-in page), profile edits, groups and
//! SSPR's "Selected" scope, Identity Protection's user risk, and the Password Rule Settings
//! — over HTTP with real tokens, checking what each refusal leaves unchanged.

use hybrid_lab_tests::{TestLab, Via, install_crypto};
use serde_json::{Value, json};

const USER5: (&str, &str) = ("user5@testlab.onmicrosoft.com", "Amber-Cloud-62!");
const USER1: (&str, &str) = ("user1@testlab.example", "Summer-Lake-41");

fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or(0)
}

fn graph_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The newest audit entry with this activity name: (result, resultReason).
async fn last_audit(t: &TestLab, activity: &str) -> (String, String) {
    let admin = t.admin_token().await;
    let path = format!("/v1.0/auditLogs/directoryAudits?$filter=activityDisplayName eq '{activity}'");
    let (_, log) = t.call("GET", &path, Some(&admin), None).await;
    let e = &log["value"][0];
    (e["result"].as_str().unwrap_or("none").into(), e["resultReason"].as_str().unwrap_or("").into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_user_changes_their_own_password_through_graph() {
    install_crypto();
    let t = TestLab::start().await;
    let token = t.user_token(USER5.0, USER5.1).await;
    let change = |current: &str, new: &str| json!({ "currentPassword": current, "newPassword": new });

    // refusals, each leaving the password as it was
    let (s, e) = t.call("POST", "/v1.0/me/changePassword", Some(&token), Some(change("Wrong-Pass-000", "Brand-New-Pass-7"))).await;
    assert_eq!((s, graph_code(&e)), (400, "Request_BadRequest"), "{e}");
    assert_eq!(last_audit(&t, "Change password (self-service)").await, ("failure".into(), "InvalidCurrentPassword".into()));
    let (s, e) = t.call("POST", "/v1.0/me/changePassword", Some(&token), Some(change(USER5.1, USER5.1))).await;
    assert_eq!(s, 400, "the current password cannot be reused: {e}");
    let (s, _) = t.call("POST", "/v1.0/me/changePassword", Some(&token), Some(change(USER5.1, "Password1!"))).await;
    assert_eq!(s, 400, "banned");
    assert_eq!(last_audit(&t, "Change password (self-service)").await.1, "FuzzyPolicyViolationInvalidPassword");
    let (s, _) = t.call("POST", "/v1.0/me/changePassword", Some(&token), Some(json!({ "currentPassword": USER5.1 }))).await;
    assert_eq!(s, 400, "newPassword missing");
    // someone else's account: Graph's refusal
    let user1 = t.admin_token().await;
    let (_, u1) = t.call("GET", &format!("/v1.0/users/{}", USER1.0), Some(&user1), None).await;
    let path = format!("/v1.0/users/{}/changePassword", u1["id"].as_str().unwrap());
    let (s, e) = t.call("POST", &path, Some(&token), Some(change(USER5.1, "Brand-New-Pass-7"))).await;
    assert_eq!((s, e["error"]["message"].as_str().unwrap()), (403, "Access to change password operation is denied."));
    // an app has no "me"
    let app = t.app_token().await;
    assert_eq!(t.call("POST", "/v1.0/me/changePassword", Some(&app), Some(change(USER5.1, "Brand-New-Pass-7"))).await.0, 400);
    assert_eq!(t.token(USER5.0, USER5.1).await.0, 200, "still the old password");

    let (s, body) = t.call("POST", "/v1.0/me/changePassword", Some(&token), Some(change(USER5.1, "Brand-New-Pass-7"))).await;
    assert_eq!((s, body), (204, Value::Null));
    assert_eq!(aadsts(&t.token(USER5.0, USER5.1).await.1), 50126);
    assert_eq!(t.token(USER5.0, "Brand-New-Pass-7").await.0, 200);
    assert_eq!(last_audit(&t, "Change password (self-service)").await, ("success".into(), String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_users_graph_change_needs_writeback_or_drifts_when_set_cloud_only() {
    install_crypto();
    let t = TestLab::start().await;
    let token = t.user_token(USER1.0, USER1.1).await;
    let body = json!({ "currentPassword": USER1.1, "newPassword": "Changed-In-Cloud-5" });
    // writeback off on the sync side: refused, nothing changes
    let (s, e) = t.call("POST", "/v1.0/me/changePassword", Some(&token), Some(body.clone())).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("managed on-premises"), "{e}");
    // writeback on, but no engine connected: Graph's 503, nothing changes on either side
    let admin = t.admin_token().await;
    let tid = t.info().tenant.tenant_id.clone();
    let on = json!({ "features": { "passwordWritebackEnabled": true } });
    assert_eq!(t.call("PATCH", &format!("/v1.0/directory/onPremisesSynchronization/{tid}"), Some(&admin), Some(on)).await.0, 204);
    let (s, e) = t.call("POST", "/v1.0/me/changePassword", Some(&token), Some(body.clone())).await;
    assert_eq!((s, graph_code(&e)), (503, "serviceNotAvailable"), "{e}");
    assert_eq!(last_audit(&t, "Change password (self-service)").await, ("failure".into(), "SSPR_0030".into()));
    assert_eq!(t.token(USER1.0, USER1.1).await.0, 200);
    // the other reading of Microsoft's table: Graph's change stays in the cloud
    let cloud_only = json!({ "writeBackGraphChangePassword": false });
    assert_eq!(t.call("PATCH", "/lab/sspr/onPremisesIntegration", Some(&admin), Some(cloud_only)).await.0, 204);
    assert_eq!(t.call("POST", "/v1.0/me/changePassword", Some(&token), Some(body)).await.0, 204);
    assert_eq!(t.token(USER1.0, "Changed-In-Cloud-5").await.0, 200);
    // ...and AD keeps the old one: the drift the real product shows for cloud-only paths
    let mut l = t.connect(Via::Ldaps).await;
    assert_eq!(l.simple_bind("TESTLAB\\User1", USER1.1).await.unwrap().rc, 0);
    assert_eq!(l.simple_bind("TESTLAB\\User1", "Changed-In-Cloud-5").await.unwrap().rc, 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_change_after_an_admin_reset_is_finished_on_the_sign_in_page() {
    install_crypto();
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let reset = json!({ "passwordProfile": { "password": "Temp-Pass-2026!", "forceChangePasswordNextSignIn": true } });
    assert_eq!(t.call("PATCH", &format!("/v1.0/users/{}", USER5.0), Some(&admin), Some(reset)).await.0, 204);
    assert_eq!(aadsts(&t.token(USER5.0, "Temp-Pass-2026!").await.1), 50055);
    let page = |current: &str, new: &str| json!({ "userPrincipalName": USER5.0, "currentPassword": current, "newPassword": new });
    // an unknown user answers like a wrong password
    let unknown = json!({ "userPrincipalName": "nobody@testlab.example", "currentPassword": "x", "newPassword": "Own-Choice-Pass-9" });
    let (s, e) = t.call("POST", "/lab/signIn/changePassword", None, Some(unknown)).await;
    let (s2, e2) = t.call("POST", "/lab/signIn/changePassword", None, Some(page("Not-The-Temp-1", "Own-Choice-Pass-9"))).await;
    assert_eq!((s, &e["error"]["message"]), (s2, &e2["error"]["message"]));
    let (s, _) = t.call("POST", "/lab/signIn/changePassword", None, Some(page("Temp-Pass-2026!", "Own-Choice-Pass-9"))).await;
    assert_eq!(s, 204);
    assert_eq!(t.token(USER5.0, "Own-Choice-Pass-9").await.0, 200, "no longer interrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_edits_follow_the_role_table_and_synced_properties_stay_on_premises() {
    install_crypto();
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let (s, _) = t
        .call("PATCH", &format!("/v1.0/users/{}", USER5.0), Some(&admin), Some(json!({ "displayName": "User Five", "surname": "Five" })))
        .await;
    assert_eq!(s, 204);
    let (_, u) = t.call("GET", &format!("/v1.0/users/{}", USER5.0), Some(&admin), None).await;
    assert_eq!((u["displayName"].as_str(), u["surname"].as_str()), (Some("User Five"), Some("Five")));

    // synced: the properties Connect masters refuse, and the password in the same body with them
    let both = json!({ "displayName": "Renamed", "passwordProfile": { "password": "Cloud-Side-Pass-8" } });
    let (s, e) = t.call("PATCH", &format!("/v1.0/users/{}", USER1.0), Some(&admin), Some(both)).await;
    assert_eq!(s, 400);
    assert!(e["error"]["message"].as_str().unwrap().starts_with("Unable to update the specified properties for on-premises mastered"));
    assert_eq!(t.token(USER1.0, USER1.1).await.0, 200, "the password did not change either");
    // passwordPolicies is the cloud's own
    let (s, _) = t.call("PATCH", &format!("/v1.0/users/{}", USER1.0), Some(&admin), Some(json!({ "passwordPolicies": "None" }))).await;
    assert_eq!(s, 204);
    let (_, u) = t.call("GET", &format!("/v1.0/users/{}?$select=passwordPolicies", USER1.0), Some(&admin), None).await;
    assert_eq!(u["passwordPolicies"], Value::Null);

    // a Helpdesk Administrator may not touch a Global Administrator's profile
    let helpdesk = t.user_token("helpdesk@testlab.example", "Help-Desk-Pa55!").await;
    let (s, _) =
        t.call("PATCH", "/v1.0/users/labadmin@testlab.onmicrosoft.com", Some(&helpdesk), Some(json!({ "displayName": "x" }))).await;
    assert_eq!(s, 403);
    // bad types are refused whole
    let (s, _) =
        t.call("PATCH", &format!("/v1.0/users/{}", USER5.0), Some(&admin), Some(json!({ "surname": "Ok", "accountEnabled": "yes" }))).await;
    assert_eq!(s, 400);
    let (_, u) = t.call("GET", &format!("/v1.0/users/{}", USER5.0), Some(&admin), None).await;
    assert_eq!(u["surname"], "Five");
}

async fn group_id(t: &TestLab, token: &str, name: &str) -> String {
    let (_, list) = t.call("GET", "/v1.0/groups", Some(token), None).await;
    list["value"].as_array().unwrap().iter().find(|g| g["displayName"] == name).expect("group")["id"].as_str().unwrap().to_string()
}

async fn user_id(t: &TestLab, token: &str, upn: &str) -> String {
    t.call("GET", &format!("/v1.0/users/{upn}"), Some(token), None).await.1["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sspr_scoped_to_a_selected_group_admits_its_nested_members_only() {
    install_crypto();
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let app = t.app_token().await;
    let pwreset = group_id(&t, &app, "PWReset").await;
    let (_, members) = t.call("GET", &format!("/v1.0/groups/{pwreset}/members"), Some(&app), None).await;
    let names: Vec<&str> = members["value"].as_array().unwrap().iter().map(|m| m["userPrincipalName"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{members}");
    assert!(names.contains(&"user1@testlab.example") && names.contains(&"user4@testlab.example"));

    let selected = json!({ "enabled": "Selected", "selectedGroupId": pwreset });
    assert_eq!(t.call("PATCH", "/lab/sspr/policy", Some(&admin), Some(selected)).await.0, 204);
    let (_, policy) = t.call("GET", "/lab/sspr/policy", Some(&admin), None).await;
    assert_eq!((policy["enabled"].as_str(), policy["selectedGroupId"].as_str()), (Some("Selected"), Some(pwreset.as_str())));
    let start = |upn: &str| json!({ "userPrincipalName": upn });
    let (s, e) = t.call("POST", "/lab/sspr/flows", None, Some(start(USER5.0))).await;
    assert_eq!((s, graph_code(&e)), (403, "SSPR_0013"));

    // a nested group brings user5 in
    let (s, nested) = t
        .call(
            "POST",
            "/v1.0/groups",
            Some(&app),
            Some(json!({ "displayName": "Contractors", "mailNickname": "contractors", "mailEnabled": false, "securityEnabled": true })),
        )
        .await;
    assert_eq!(s, 201, "{nested}");
    let nested = nested["id"].as_str().unwrap().to_string();
    let user5 = user_id(&t, &app, USER5.0).await;
    let r = |id: &str| json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}") });
    assert_eq!(t.call("POST", &format!("/v1.0/groups/{nested}/members/$ref"), Some(&app), Some(r(&user5))).await.0, 204);
    let (s, e) = t.call("POST", &format!("/v1.0/groups/{nested}/members/$ref"), Some(&app), Some(r(&user5))).await;
    assert_eq!(s, 400, "already a member: {e}");
    assert_eq!(t.call("POST", &format!("/v1.0/groups/{pwreset}/members/$ref"), Some(&app), Some(r(&nested))).await.0, 204);
    assert_eq!(t.call("POST", "/lab/sspr/flows", None, Some(start(USER5.0))).await.0, 201);
    // and taking it out again closes the door
    assert_eq!(t.call("DELETE", &format!("/v1.0/groups/{pwreset}/members/{nested}/$ref"), Some(&app), None).await.0, 204);
    assert_eq!(graph_code(&t.call("POST", "/lab/sspr/flows", None, Some(start(USER5.0))).await.1), "SSPR_0013");
    // a selected group that does not exist is refused, and the policy stays
    let bogus = json!({ "enabled": "Selected", "selectedGroupId": "00000000-0000-0000-0000-000000000001" });
    assert_eq!(t.call("PATCH", "/lab/sspr/policy", Some(&admin), Some(bogus)).await.0, 400);
    assert_eq!(t.call("GET", "/lab/sspr/policy", Some(&admin), None).await.1["selectedGroupId"].as_str(), Some(pwreset.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_role_assignable_groups_are_out_of_a_helpdesk_admins_reach() {
    install_crypto();
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let app = t.app_token().await;
    let spec = json!({ "displayName": "Tier0", "mailNickname": "tier0", "mailEnabled": false, "securityEnabled": true, "isAssignableToRole": true });
    assert_eq!(
        t.call("POST", "/v1.0/groups", Some(&app), Some(spec.clone())).await.0,
        403,
        "apps cannot create role-assignable groups here"
    );
    let (s, g) = t.call("POST", "/v1.0/groups", Some(&admin), Some(spec)).await;
    assert_eq!(s, 201);
    assert_eq!(g["isAssignableToRole"], true);
    let user5 = user_id(&t, &app, USER5.0).await;
    let r = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user5}") });
    assert_eq!(t.call("POST", &format!("/v1.0/groups/{}/members/$ref", g["id"].as_str().unwrap()), Some(&admin), Some(r)).await.0, 204);
    let helpdesk = t.user_token("helpdesk@testlab.example", "Help-Desk-Pa55!").await;
    let reset = json!({ "passwordProfile": { "password": "Helpdesk-Set-Pass-4" } });
    assert_eq!(t.call("PATCH", &format!("/v1.0/users/{}", USER5.0), Some(&helpdesk), Some(reset.clone())).await.0, 403);
    assert_eq!(t.call("PATCH", "/v1.0/users/user4@testlab.example", Some(&helpdesk), Some(reset)).await.0, 204, "an ordinary user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_risky_user_must_change_their_password_and_the_change_remediates_the_risk() {
    install_crypto();
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let app = t.app_token().await;
    let user5 = user_id(&t, &app, USER5.0).await;
    assert_eq!(t.call("GET", "/v1.0/identityProtection/riskyUsers", Some(&app), None).await.1["value"], json!([]));
    // a detection at high, and a policy acting at medium and above
    assert_eq!(
        t.call("PATCH", &format!("/lab/identityProtection/riskyUsers/{}", USER5.0), Some(&admin), Some(json!({ "riskLevel": "high" })))
            .await
            .0,
        204
    );
    assert_eq!(t.token(USER5.0, USER5.1).await.0, 200, "no policy yet: risk alone does not block");
    let policy = json!({ "enabled": true, "level": "medium" });
    assert_eq!(t.call("PATCH", "/lab/identityProtection/userRiskPolicy", Some(&admin), Some(policy)).await.0, 204);
    let (s, e) = t.token(USER5.0, USER5.1).await;
    assert_eq!((s, aadsts(&e)), (400, 50142));
    assert_eq!(aadsts(&t.token(USER5.0, "Wrong-Password-1").await.1), 50126, "the password is checked first");
    let (_, r) = t.call("GET", &format!("/v1.0/identityProtection/riskyUsers/{user5}"), Some(&app), None).await;
    assert_eq!((r["riskLevel"].as_str(), r["riskState"].as_str()), (Some("high"), Some("atRisk")));

    let change = json!({ "userPrincipalName": USER5.0, "currentPassword": USER5.1, "newPassword": "Secure-Change-Pass-3" });
    assert_eq!(t.call("POST", "/lab/signIn/changePassword", None, Some(change)).await.0, 204);
    assert_eq!(t.token(USER5.0, "Secure-Change-Pass-3").await.0, 200);
    let (_, r) = t.call("GET", &format!("/v1.0/identityProtection/riskyUsers/{user5}"), Some(&app), None).await;
    assert_eq!(
        (r["riskLevel"].as_str(), r["riskState"].as_str(), r["riskDetail"].as_str()),
        (Some("none"), Some("remediated"), Some("userPerformedSecuredPasswordChange"))
    );

    // an administrator confirms the account compromised, then dismisses the risk
    assert_eq!(
        t.call("POST", "/v1.0/identityProtection/riskyUsers/confirmCompromised", Some(&app), Some(json!({ "userIds": [user5] }))).await.0,
        204
    );
    assert_eq!(aadsts(&t.token(USER5.0, "Secure-Change-Pass-3").await.1), 50142);
    let bad = json!({ "userIds": [user5, "00000000-0000-0000-0000-000000000009"] });
    assert_eq!(t.call("POST", "/v1.0/identityProtection/riskyUsers/dismiss", Some(&app), Some(bad)).await.0, 400);
    assert_eq!(aadsts(&t.token(USER5.0, "Secure-Change-Pass-3").await.1), 50142, "an unknown id rejected the whole list");
    assert_eq!(t.call("POST", "/v1.0/identityProtection/riskyUsers/dismiss", Some(&app), Some(json!({ "userIds": [user5] }))).await.0, 204);
    assert_eq!(t.token(USER5.0, "Secure-Change-Pass-3").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_rule_settings_carry_the_custom_banned_list_and_smart_lockout() {
    install_crypto();
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let (_, templates) = t.call("GET", "/v1.0/groupSettingTemplates", Some(&admin), None).await;
    let template = templates["value"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(template, "5cf42378-d67d-4f36-ba46-e8b86229381d");
    assert_eq!(t.call("GET", "/v1.0/groupSettings", Some(&admin), None).await.1["value"], json!([]));
    let reset = |p: &str| json!({ "passwordProfile": { "password": p, "forceChangePasswordNextSignIn": false } });
    let user5 = format!("/v1.0/users/{}", USER5.0);

    // a bad value: nothing is created
    let bad = json!({ "templateId": template, "values": [{ "name": "BannedPasswordList", "value": "ok-term\tab" }] });
    assert_eq!(t.call("POST", "/v1.0/groupSettings", Some(&admin), Some(bad)).await.0, 400);
    assert_eq!(t.call("GET", "/v1.0/groupSettings", Some(&admin), None).await.1["value"], json!([]));
    let setting = json!({ "templateId": template, "values": [
        { "name": "BannedPasswordList", "value": "amberfield\tcontoso" },
        { "name": "LockoutThreshold", "value": "3" },
    ]});
    let (s, created) = t.call("POST", "/v1.0/groupSettings", Some(&admin), Some(setting.clone())).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(t.call("POST", "/v1.0/groupSettings", Some(&admin), Some(setting)).await.0, 400, "one per tenant");
    // "Amberfield!9": the custom term scores 1, "!9" two more: under 5
    assert_eq!(t.call("PATCH", &user5, Some(&admin), Some(reset("Amberfield!9"))).await.0, 400);
    // smart lockout now locks after three failures
    // (three different wrong passwords: the same one again does not count)
    for wrong in ["Wrong-Password-1", "Wrong-Password-2"] {
        assert_eq!(aadsts(&t.token(USER5.0, wrong).await.1), 50126);
    }
    assert_eq!(aadsts(&t.token(USER5.0, "Wrong-Password-3").await.1), 50053);

    // switching the check off lifts the custom list
    let id = created["id"].as_str().unwrap();
    let off = json!({ "values": [{ "name": "EnableBannedPasswordCheck", "value": "False" }] });
    assert_eq!(t.call("PATCH", &format!("/v1.0/groupSettings/{id}"), Some(&admin), Some(off)).await.0, 204);
    assert_eq!(t.call("PATCH", &user5, Some(&admin), Some(reset("Amberfield!9"))).await.0, 204);
    // deleting the setting returns to the defaults
    assert_eq!(t.call("DELETE", &format!("/v1.0/groupSettings/{id}"), Some(&admin), None).await.0, 204);
    assert_eq!(t.call("GET", &format!("/v1.0/groupSettings/{id}"), Some(&admin), None).await.0, 404);
    // and a Helpdesk Administrator cannot read or write them
    let helpdesk = t.user_token("helpdesk@testlab.example", "Help-Desk-Pa55!").await;
    assert_eq!(t.call("GET", "/v1.0/groupSettings", Some(&helpdesk), None).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_reset_notifies_the_user_and_nobody_gets_a_code_in_it() {
    install_crypto();
    let t = TestLab::start().await;
    let (_, flow) = t.call("POST", "/lab/sspr/flows", None, Some(json!({ "userPrincipalName": USER5.0 }))).await;
    let id = flow["id"].as_str().unwrap();
    t.call("POST", &format!("/lab/sspr/flows/{id}/codes"), None, Some(json!({ "method": "email" }))).await;
    let (_, outbox) = t.lab_call("GET", "/lab/outbox", None).await;
    let code = outbox["value"][0]["code"].clone();
    t.call("POST", &format!("/lab/sspr/flows/{id}/verify"), None, Some(json!({ "method": "email", "code": code }))).await;
    assert_eq!(
        t.call("POST", &format!("/lab/sspr/flows/{id}/reset"), None, Some(json!({ "newPassword": "Notified-Pass-42" }))).await.0,
        200
    );
    let (_, outbox) = t.lab_call("GET", "/lab/outbox?to=user5@alt.testlab.example", None).await;
    let notice = outbox["value"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(notice["subject"], "Testlab account password reset");
    assert!(notice.get("code").is_none(), "{notice}");
    assert!(!notice["body"].as_str().unwrap().contains("Notified-Pass-42"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_gets_an_odata_413_and_changes_nothing() {
    install_crypto();
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let huge = json!({ "displayName": "x".repeat(2 * 1024 * 1024) });
    let (s, e) = t.call("PATCH", &format!("/v1.0/users/{}", USER5.0), Some(&admin), Some(huge)).await;
    assert_eq!((s, graph_code(&e)), (413, "RequestEntityTooLarge"), "{e}");
    assert!(e["error"]["innerError"]["request-id"].is_string());
    let (_, u) = t.call("GET", &format!("/v1.0/users/{}", USER5.0), Some(&admin), None).await;
    assert_eq!(u["displayName"], "User5 (cloud)");
    // wrong types and unknown properties: 400, nothing changed
    for body in [json!({ "displayName": 7 }), json!({ "nickname": "x" }), json!(["displayName"])] {
        let (s, e) = t.call("PATCH", &format!("/v1.0/users/{}", USER5.0), Some(&admin), Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {e}");
    }
    assert_eq!(t.call("GET", &format!("/v1.0/users/{}", USER5.0), Some(&admin), None).await.1["displayName"], "User5 (cloud)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_clock_and_role_assignments_over_http() {
    install_crypto();
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    // the lab's clock is its administrator's, to read as to move (issue #15)
    assert_eq!(t.call("GET", "/lab/clock", None, None).await.0, 401);
    let (s, c) = t.call("GET", "/lab/clock", Some(&admin), None).await;
    assert_eq!((s, c["now"].as_str(), c["frozen"].as_bool()), (200, Some("2026-01-05T09:00:00Z"), Some(true)));
    let helpdesk = t.user_token("helpdesk@testlab.example", "Help-Desk-Pa55!").await;
    assert_eq!(t.call("POST", "/lab/clock", Some(&helpdesk), Some(json!({ "advance": "1d" }))).await.0, 403);
    assert_eq!(t.call("POST", "/lab/clock", Some(&admin), Some(json!({ "advance": "soon" }))).await.0, 400);
    let (s, c) = t.call("POST", "/lab/clock", Some(&admin), Some(json!({ "advance": "1d" }))).await;
    assert_eq!((s, c["now"].as_str()), (200, Some("2026-01-06T09:00:00Z")));
    // the AD DS shares the clock: an access token from before is now expired
    assert_eq!(t.call("GET", "/v1.0/me", Some(&helpdesk), None).await.0, 401);

    // make user4 a Helpdesk Administrator; then user4 may reset user1 but user1 not user4
    let admin = t.admin_token().await;
    let user4 = user_id(&t, &admin, "user4@testlab.example").await;
    let helpdesk_role = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
    let assign = json!({ "principalId": user4, "roleDefinitionId": helpdesk_role, "directoryScopeId": "/" });
    let (s, a) = t.call("POST", "/v1.0/roleManagement/directory/roleAssignments", Some(&admin), Some(assign.clone())).await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(t.call("POST", "/v1.0/roleManagement/directory/roleAssignments", Some(&admin), Some(assign)).await.0, 400);
    let path = format!("/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{user4}'");
    assert_eq!(t.call("GET", &path, Some(&admin), None).await.1["value"].as_array().unwrap().len(), 1);
    let user4_token = t.user_token("user4@testlab.example", "Copper-River-93").await;
    let reset = json!({ "passwordProfile": { "password": "By-Helpdesk-User4-1" } });
    assert_eq!(t.call("PATCH", "/v1.0/users/user5@testlab.onmicrosoft.com", Some(&user4_token), Some(reset)).await.0, 204);
    let (s, _) = t
        .call("DELETE", &format!("/v1.0/roleManagement/directory/roleAssignments/{}", a["id"].as_str().unwrap()), Some(&admin), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(t.call("GET", &path, Some(&admin), None).await.1["value"], json!([]));
}

/// Microsoft's 2026 tutorials name the Hybrid Identity Administrator for Password reset ›
/// On-premises integration and for Connect (issue 32): that role reads and sets the
/// integration and the sync side's features; a Helpdesk Administrator may not; neither may
/// touch the lab's own switches (the lab clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_identity_administrator_turns_writeback_on_in_the_admin_center() {
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let user4 = user_id(&t, &admin, "user4@testlab.example").await;
    let hybrid_role = "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2";
    let assign = json!({ "principalId": user4, "roleDefinitionId": hybrid_role, "directoryScopeId": "/" });
    assert_eq!(t.call("POST", "/v1.0/roleManagement/directory/roleAssignments", Some(&admin), Some(assign)).await.0, 201);
    let hybrid = t.user_token("user4@testlab.example", &t.password_of("User4")).await;
    let patch = json!({ "writeBackPasswords": false, "allowUnlockWithoutReset": true });
    let (s, v) = t.call("PATCH", "/lab/sspr/onPremisesIntegration", Some(&hybrid), Some(patch)).await;
    assert!((200..300).contains(&s), "{s} {v}");
    let (s, v) = t.call("GET", "/lab/sspr/onPremisesIntegration", Some(&hybrid), None).await;
    assert_eq!((s, v["writeBackPasswords"].as_bool(), v["allowUnlockWithoutReset"].as_bool()), (200, Some(false), Some(true)), "{v}");
    let sync = format!("/v1.0/directory/onPremisesSynchronization/{}", t.info().tenant.tenant_id);
    assert_eq!(t.call("GET", &sync, Some(&hybrid), None).await.0, 200);
    assert_eq!(t.call("GET", "/lab/writeback/engines", Some(&hybrid), None).await.0, 200);
    assert_eq!(t.call("POST", "/lab/clock", Some(&hybrid), Some(json!({ "advance": "1d" }))).await.0, 403, "not the lab's switches");
    let helpdesk = t.user_token("helpdesk@testlab.example", "Help-Desk-Pa55!").await;
    assert_eq!(t.call("GET", "/lab/sspr/onPremisesIntegration", Some(&helpdesk), None).await.0, 403);
    assert_eq!(
        t.call("PATCH", "/lab/sspr/onPremisesIntegration", Some(&helpdesk), Some(json!({ "writeBackPasswords": true }))).await.0,
        403
    );
    assert_eq!(t.call("GET", &sync, Some(&helpdesk), None).await.0, 403);
    assert_eq!(t.call("GET", "/lab/sspr/onPremisesIntegration", None, None).await.0, 401);
    t.stop().await;
}
