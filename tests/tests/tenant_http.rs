//! The tenant over real HTTPS with reqwest: OIDC metadata, the token endpoint's grants and
//! AADSTS errors, tokens validated against the published JWKS, and Graph's user reads
//! with OData errors.

use std::time::Duration;

use base64::Engine;
use hybrid_lab_tests::{TestLab, Via, install_crypto};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};

async fn token(t: &TestLab, form: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}/oauth2/v2.0/token", t.info().tenant.authority);
    let r = t.http().post(url).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn user_token(t: &TestLab, upn: &str, password: &str) -> (u16, Value) {
    let client_id = t.info().tenant.client_id.clone();
    token(
        t,
        &[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("username", upn),
            ("password", password),
            ("scope", "https://graph.microsoft.com/.default openid profile"),
        ],
    )
    .await
}

/// An app-only token (client credentials) for the testlab app registration.
async fn app_token(t: &TestLab) -> String {
    let tn = t.info().tenant.clone();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", tn.client_id.as_str()),
        ("client_secret", tn.client_secret.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    token(t, &form).await.1["access_token"].as_str().expect("app token").to_string()
}

fn aadsts(body: &Value) -> u64 {
    let codes = body["error_codes"].as_array().expect("error_codes");
    assert!(body["error_description"].as_str().unwrap().starts_with(&format!("AADSTS{}: ", codes[0])), "{body}");
    codes[0].as_u64().unwrap()
}

async fn graph(t: &TestLab, path: &str, bearer: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = t.http().get(format!("{}{path}", t.info().tenant.graph));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_metadata_and_jwks_verify_the_tokens_issued() {
    install_crypto();
    let t = TestLab::start().await;
    let tn = t.info().tenant.clone();
    let meta: Value =
        t.http().get(format!("{}/v2.0/.well-known/openid-configuration", tn.authority)).send().await.unwrap().json().await.unwrap();
    assert_eq!(meta["issuer"], format!("{}/v2.0", tn.authority));
    assert_eq!(meta["token_endpoint"], format!("{}/oauth2/v2.0/token", tn.authority));
    let jwks: JwkSet = t.http().get(meta["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();

    let (status, body) = user_token(&t, "user1@testlab.example", "Summer-Lake-41").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(access).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).expect("kid in JWKS")).unwrap();
    let mut v = Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["https://graph.microsoft.com"]);
    v.set_issuer(&[format!("https://sts.windows.net/{}/", tn.tenant_id)]);
    v.validate_exp = false; // issued on the lab clock (frozen at 2026-01-05)
    let claims = jsonwebtoken::decode::<Value>(access, &key, &v).expect("valid signature").claims;
    assert_eq!(claims["tid"], tn.tenant_id);
    assert_eq!(claims["upn"], "user1@testlab.example");
    assert!(claims["scp"].as_str().unwrap().split(' ').any(|s| s == "User.Read"));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    assert!(body["id_token"].is_string(), "openid was asked for");
    // the Global Administrator's token carries the role template id
    let (_, admin) = user_token(&t, &tn.admin_upn, &tn.admin_password).await;
    let claims = jsonwebtoken::decode::<Value>(admin["access_token"].as_str().unwrap(), &key, &v).unwrap().claims;
    assert_eq!(claims["wids"], serde_json::json!(["62e90394-69f5-4237-9190-012177145e10"]));

    // an unknown tenant
    let r = t.http().get(format!("{}/no-such-tenant/v2.0/.well-known/openid-configuration", tn.https)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(aadsts(&r.json().await.unwrap()), 90002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_failures_answer_entras_aadsts_codes_and_smart_lockout_is_the_clouds_own() {
    install_crypto();
    let t = TestLab::start().await;
    let (status, body) = user_token(&t, "user1@testlab.example", "wrong").await;
    assert_eq!((status, body["error"].as_str().unwrap(), aadsts(&body)), (400, "invalid_grant", 50126));
    assert!(!body.to_string().contains("user1@testlab.example"), "the account is not echoed back");
    assert_eq!(aadsts(&user_token(&t, "nobody@testlab.example", "x").await.1), 50034);
    // User3 is disabled on-premises, so its synced twin is disabled in the cloud
    assert_eq!(aadsts(&user_token(&t, "user3@testlab.example", "Quiet-Meadow-58").await.1), 50057);
    // smart lockout: ten failures lock the cloud sign-in for a minute, whatever the password;
    // the same wrong password again does not count (Entra keeps the last three bad hashes)
    for i in 0..9 {
        assert_eq!(aadsts(&user_token(&t, "user4@testlab.example", &format!("wrong-{i}")).await.1), 50126);
        assert_eq!(aadsts(&user_token(&t, "user4@testlab.example", &format!("wrong-{i}")).await.1), 50126);
    }
    assert_eq!(aadsts(&user_token(&t, "user4@testlab.example", "wrong-9").await.1), 50053);
    assert_eq!(aadsts(&user_token(&t, "user4@testlab.example", "Copper-River-93").await.1), 50053);
    // ...and it is not AD's lockout: the on-premises account still binds
    let mut l = t.connect(Via::Ldaps).await;
    assert_eq!(l.simple_bind("TESTLAB\\User4", "Copper-River-93").await.unwrap().rc, 0);
    t.lab.clock.advance(Duration::from_secs(61));
    assert_eq!(user_token(&t, "user4@testlab.example", "Copper-River-93").await.0, 200);
    // malformed requests
    let (s, b) = token(&t, &[("client_id", "x"), ("scope", "openid")]).await;
    assert_eq!((s, aadsts(&b)), (400, 900144));
    let client_id = t.info().tenant.client_id.clone();
    let (s, b) = token(&t, &[("grant_type", "authorization_code"), ("client_id", &client_id), ("scope", "openid")]).await;
    assert_eq!((s, aadsts(&b)), (400, 900144), "a code grant needs its code: {b}");
    let (s, b) = token(&t, &[("grant_type", "urn:example:no-such-grant"), ("client_id", &client_id), ("scope", "openid")]).await;
    assert_eq!((s, b["error"].as_str().unwrap()), (400, "unsupported_grant_type"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_give_app_roles() {
    install_crypto();
    let t = TestLab::start().await;
    let tn = t.info().tenant.clone();
    let ok = [
        ("grant_type", "client_credentials"),
        ("client_id", tn.client_id.as_str()),
        ("client_secret", tn.client_secret.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let (status, body) = token(&t, &ok).await;
    assert_eq!(status, 200, "{body}");
    let payload = body["access_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    let claims: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(
        claims["roles"],
        serde_json::json!([
            "User.ReadWrite.All",
            "UserAuthenticationMethod.ReadWrite.All",
            "Directory.Read.All",
            "AuditLog.Read.All",
            "Group.ReadWrite.All",
            "IdentityRiskyUser.ReadWrite.All"
        ])
    );
    assert!(claims.get("scp").is_none());
    let mut bad = ok;
    bad[2].1 = "not-the-secret";
    let (s, b) = token(&t, &bad).await;
    assert_eq!((s, b["error"].as_str().unwrap(), aadsts(&b)), (401, "invalid_client", 7000215));
    let mut unknown = ok;
    unknown[1].1 = "00000000-0000-0000-0000-000000000001";
    assert_eq!(aadsts(&token(&t, &unknown).await.1), 700016);
    let mut scope = ok;
    scope[3].1 = "User.Read";
    let (s, b) = token(&t, &scope).await;
    assert_eq!((s, b["error"].as_str().unwrap()), (400, "invalid_scope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_reads_users_with_odata_shapes_and_synced_twins_match_ad() {
    install_crypto();
    let t = TestLab::start().await;
    let (_, body) = user_token(&t, "user1@testlab.example", "Summer-Lake-41").await;
    let user = body["access_token"].as_str().unwrap().to_string();
    let (status, headers, me) = graph(&t, "/me", Some(&user)).await;
    assert_eq!(status, 200, "{me}");
    assert!(headers.contains_key("request-id"));
    assert!(me["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#users/$entity"));
    assert_eq!(me["userPrincipalName"], "user1@testlab.example");
    assert!(me.get("onPremisesImmutableId").is_none(), "only the default properties without $select");

    // the synced twin carries the AD object's anchor: base64 of objectGUID, read over LDAP
    let mut l = t.admin(Via::Ldaps).await;
    let (rs, _) = l
        .search("DC=testlab,DC=example", ldap3::Scope::Subtree, "(sAMAccountName=User1)", vec!["objectGUID", "objectSid"])
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = ldap3::SearchEntry::construct(rs.into_iter().next().unwrap());
    let anchor = base64::engine::general_purpose::STANDARD.encode(&e.bin_attrs["objectGUID"][0]);
    let sid = ad_ds::sid::Sid::from_bytes(&e.bin_attrs["objectSid"][0]).unwrap().to_string();
    let (_, _, me) = graph(
        &t,
        "/me?$select=id,onPremisesImmutableId,onPremisesSamAccountName,onPremisesSecurityIdentifier,onPremisesSyncEnabled",
        Some(&user),
    )
    .await;
    assert_eq!(me["onPremisesImmutableId"], anchor);
    assert_eq!(me["onPremisesSamAccountName"], "User1");
    assert_eq!(me["onPremisesSecurityIdentifier"], sid);
    assert_eq!(me["onPremisesSyncEnabled"], true);
    // (a query's '+' reads as a space: base64's must go percent-encoded, as SDKs send it)
    let quoted = anchor.replace('+', "%2B").replace('/', "%2F");
    let found = graph(&t, &format!("/users?$filter=onPremisesImmutableId eq '{quoted}'&$select=userPrincipalName"), Some(&user)).await.2;
    assert_eq!(found["value"], serde_json::json!([{ "userPrincipalName": "user1@testlab.example" }]));
    let by_upn = graph(&t, "/users/USER2@testlab.example?$select=displayName", Some(&user)).await.2;
    assert_eq!(by_upn["displayName"], "User2");
    let all = graph(&t, "/users?$select=userPrincipalName", Some(&user)).await.2;
    assert_eq!(all["value"].as_array().unwrap().len(), 7, "four synced twins, three cloud-only users");

    // OData errors
    let (s, h, e) = graph(&t, "/me", None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str().unwrap(), e["error"]["message"].as_str().unwrap()),
        (401, "InvalidAuthenticationToken", "Access token is empty.")
    );
    // Graph's challenge, which SDKs read: where to sign in, for which resource
    assert_eq!(
        h["www-authenticate"],
        format!(
            "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            t.info().tenant.https
        )
    );
    // the ids in the error are the answer's own (issue 31, item 12), the client's echoed
    assert_eq!(e["error"]["innerError"]["request-id"].as_str(), h["request-id"].to_str().ok(), "{e}");
    assert_eq!(e["error"]["innerError"]["client-request-id"].as_str(), h["client-request-id"].to_str().ok(), "{e}");
    let r = t.http().get(format!("{}/me", t.info().tenant.graph)).header("client-request-id", "my-call-7").send().await.unwrap();
    assert_eq!(r.headers()["client-request-id"], "my-call-7");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["innerError"]["client-request-id"], "my-call-7");
    let mut forged = user.clone();
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    assert_eq!(graph(&t, "/me", Some(&forged)).await.2["error"]["message"], "Access token validation failure. Invalid signature.");
    let (s, _, e) = graph(&t, "/users/nobody@testlab.example", Some(&user)).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (404, "Request_ResourceNotFound"));
    let (s, _, e) = graph(&t, "/me?$select=favouriteColour", Some(&user)).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (400, "Request_BadRequest"));
    let (s, _, e) = graph(&t, "/users?$filter=startswith(officeLocation,'U')", Some(&user)).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (400, "Request_UnsupportedQuery"));
    // an app token has no /me
    let app = app_token(&t).await;
    let (s, _, _) = graph(&t, "/me", Some(&app)).await;
    assert_eq!(s, 400);
    assert_eq!(graph(&t, "/users/user1@testlab.example", Some(&app)).await.0, 200);
    // tokens expire on the lab clock
    t.lab.clock.advance(Duration::from_secs(3601));
    let (s, _, e) = graph(&t, "/me", Some(&user)).await;
    assert_eq!((s, e["error"]["message"].as_str().unwrap()), (401, "Lifetime validation failed, the token is expired."));
    // the plain http listener serves the same
    let tn = t.info().tenant.clone();
    let r = reqwest::get(format!("{}/{}/v2.0/.well-known/openid-configuration", tn.http, tn.tenant_id)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn patch(t: &TestLab, path: &str, bearer: &str, body: &str) -> (u16, Value) {
    let r = t
        .http()
        .patch(format!("{}{path}", t.info().tenant.graph))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reset_through_graph_follows_the_role_table_and_changes_only_the_cloud() {
    install_crypto();
    let t = TestLab::start().await;
    let (_, hd) = user_token(&t, "helpdesk@testlab.example", "Help-Desk-Pa55!").await;
    let helpdesk = hd["access_token"].as_str().unwrap().to_string();

    // a Helpdesk Administrator resets User1 (synced, no admin role): 204, forced change
    let (s, b) = patch(
        &t,
        "/users/user1@testlab.example",
        &helpdesk,
        r#"{"passwordProfile":{"password":"Cloud-Reset-Pass-31","forceChangePasswordNextSignIn":true}}"#,
    )
    .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(aadsts(&user_token(&t, "user1@testlab.example", "Cloud-Reset-Pass-31").await.1), 50055, "must change at next sign-in");
    assert_eq!(aadsts(&user_token(&t, "user1@testlab.example", "Summer-Lake-41").await.1), 50126);
    // Graph's PATCH is not a writeback path: AD keeps the old password (the drift is real)
    let mut l = t.connect(Via::Ldaps).await;
    assert_eq!(l.simple_bind("TESTLAB\\User1", "Summer-Lake-41").await.unwrap().rc, 0);
    assert_eq!(l.simple_bind("TESTLAB\\User1", "Cloud-Reset-Pass-31").await.unwrap().rc, 49);
    // without the forced change the new password signs in at once
    let (s, _) = patch(
        &t,
        "/users/user4@testlab.example",
        &helpdesk,
        r#"{"passwordProfile":{"password":"Cloud-Reset-Pass-44","forceChangePasswordNextSignIn":false}}"#,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(user_token(&t, "user4@testlab.example", "Cloud-Reset-Pass-44").await.0, 200);

    // Microsoft's table: a Helpdesk Administrator cannot reset a Global Administrator
    let (s, b) =
        patch(&t, "/users/labadmin@testlab.onmicrosoft.com", &helpdesk, r#"{"passwordProfile":{"password":"Never-Allowed-Pass-1"}}"#).await;
    assert_eq!((s, b["error"]["code"].as_str().unwrap()), (403, "Authorization_RequestDenied"));
    assert_eq!(user_token(&t, "labadmin@testlab.onmicrosoft.com", "Cloud-Admin-Pa55!").await.0, 200, "unchanged");
    // ...but a Global Administrator can reset the Helpdesk Administrator
    let (_, ga) = user_token(&t, "labadmin@testlab.onmicrosoft.com", "Cloud-Admin-Pa55!").await;
    let admin = ga["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        patch(
            &t,
            "/users/helpdesk@testlab.example",
            &admin,
            r#"{"passwordProfile":{"password":"Help-Desk-Reset-9","forceChangePasswordNextSignIn":false}}"#
        )
        .await
        .0,
        204
    );

    // the cloud rules (cloud-only users) and Password Protection (everyone), one message
    for (who, pw) in [
        ("user5@testlab.onmicrosoft.com", "short"),
        ("user5@testlab.onmicrosoft.com", "alllowercase"),
        ("user1@testlab.example", "P@ssw0rd1"),
    ] {
        let (s, b) = patch(&t, &format!("/users/{who}"), &admin, &format!(r#"{{"passwordProfile":{{"password":"{pw}"}}}}"#)).await;
        assert_eq!((s, b["error"]["code"].as_str().unwrap()), (400, "Request_BadRequest"), "{who} {pw}");
        assert_eq!(
            b["error"]["message"],
            "The specified password does not comply with password complexity requirements. Please provide a different password."
        );
    }
    assert_eq!(user_token(&t, "user5@testlab.onmicrosoft.com", "Amber-Cloud-62!").await.0, 200, "refused resets change nothing");
    // bad input: OData errors, nothing changed
    let (s, b) = patch(&t, "/users/user5@testlab.onmicrosoft.com", &admin, "{not json").await;
    assert_eq!((s, b["error"]["code"].as_str().unwrap()), (400, "BadRequest"));
    let (s, _) = patch(&t, "/users/user5@testlab.onmicrosoft.com", &admin, r#"{"passwordProfile":{"password":12345}}"#).await;
    assert_eq!(s, 400);
    let (s, _) =
        patch(&t, "/users/user5@testlab.onmicrosoft.com", &admin, r#"{"passwordProfile":{"password":"Fine-Pass-12","colour":"blue"}}"#)
            .await;
    assert_eq!(s, 400);
    assert_eq!(user_token(&t, "user5@testlab.onmicrosoft.com", "Amber-Cloud-62!").await.0, 200);
    // an app without a directory role reaches nobody
    let app = app_token(&t).await;
    let app_token = app;
    assert_eq!(
        patch(&t, "/users/user5@testlab.onmicrosoft.com", &app_token, r#"{"passwordProfile":{"password":"Fine-Pass-12"}}"#).await.0,
        403
    );

    // the directory audit log: newest first, successes and failures with reasons
    let (s, _, log) = graph(&t, "/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Reset user password'", Some(&app_token)).await;
    assert_eq!(s, 200, "{log}");
    let entries = log["value"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["result"].as_str().unwrap().into(),
                e["resultReason"].as_str().unwrap().into(),
                e["targetResources"][0]["userPrincipalName"].as_str().unwrap().into(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        summary,
        vec![
            s("failure", "Insufficient privileges to complete the operation.", "user5@testlab.onmicrosoft.com"),
            s("failure", "FuzzyPolicyViolationInvalidPassword", "user1@testlab.example"),
            s("failure", "PasswordDoesNotComplyWithPolicy", "user5@testlab.onmicrosoft.com"),
            s("failure", "PasswordDoesNotComplyWithPolicy", "user5@testlab.onmicrosoft.com"),
            s("success", "", "helpdesk@testlab.example"),
            s("failure", "Insufficient privileges to complete the operation.", "labadmin@testlab.onmicrosoft.com"),
            s("success", "", "user4@testlab.example"),
            s("success", "", "user1@testlab.example"),
        ]
    );
    assert_eq!(entries[4]["initiatedBy"]["user"]["userPrincipalName"], "labadmin@testlab.onmicrosoft.com");
    assert_eq!(entries[0]["initiatedBy"]["app"]["displayName"], "hybrid-lab automation");
    assert_eq!(entries[7]["loggedByService"], "Core Directory");
    // only readers of the log read it
    let (_, u1) = user_token(&t, "user4@testlab.example", "Cloud-Reset-Pass-44").await;
    assert_eq!(graph(&t, "/auditLogs/directoryAudits", u1["access_token"].as_str()).await.0, 403);
}

async fn send(t: &TestLab, method: reqwest::Method, url: String, bearer: &str, body: Option<&str>) -> (u16, Value) {
    let mut req = t.http().request(method, url).bearer_auth(bearer);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_halves_of_the_writeback_switch_are_read_and_set_by_a_global_administrator() {
    install_crypto();
    let t = TestLab::start().await;
    let tn = t.info().tenant.clone();
    let ga = user_token(&t, &tn.admin_upn, &tn.admin_password).await.1["access_token"].as_str().unwrap().to_string();
    let sync = format!("{}/directory/onPremisesSynchronization", tn.graph);
    let (s, b) = send(&t, reqwest::Method::GET, sync.clone(), &ga, None).await;
    assert_eq!(s, 200, "{b}");
    let features = &b["value"][0]["features"];
    assert_eq!(
        (features["passwordSyncEnabled"].as_bool(), features["passwordWritebackEnabled"].as_bool()),
        (Some(true), Some(false)),
        "writeback waits for the engine"
    );
    assert_eq!(b["value"][0]["id"], tn.tenant_id);
    let lab = format!("{}/lab/sspr/onPremisesIntegration", tn.https);
    let (s, b) = send(&t, reqwest::Method::GET, lab.clone(), &ga, None).await;
    assert_eq!(
        (s, &b["writeBackPasswords"], &b["allowUnlockWithoutReset"], &b["writebackEnabled"]),
        (200, &Value::Bool(true), &Value::Bool(false), &Value::Bool(false))
    );

    // the sync side switched on (what the engine's onboarding will do), then the blade's toggles
    let one = format!("{sync}/{}", tn.tenant_id);
    assert_eq!(send(&t, reqwest::Method::PATCH, one.clone(), &ga, Some(r#"{"features":{"passwordWritebackEnabled":true}}"#)).await.0, 204);
    assert_eq!(send(&t, reqwest::Method::PATCH, lab.clone(), &ga, Some(r#"{"allowUnlockWithoutReset":true}"#)).await.0, 204);
    let (_, b) = send(&t, reqwest::Method::GET, lab.clone(), &ga, None).await;
    assert_eq!((&b["allowUnlockWithoutReset"], &b["writebackEnabled"]), (&Value::Bool(true), &Value::Bool(true)));
    assert_eq!(send(&t, reqwest::Method::PATCH, lab.clone(), &ga, Some(r#"{"writeBackPasswords":false}"#)).await.0, 204);
    assert_eq!(send(&t, reqwest::Method::GET, lab.clone(), &ga, None).await.1["writebackEnabled"], false, "both halves must agree");

    // refusals change nothing
    let (s, b) =
        send(&t, reqwest::Method::PATCH, one.clone(), &ga, Some(r#"{"features":{"passwordSyncEnabled":false,"madeUpEnabled":true}}"#))
            .await;
    assert_eq!((s, b["error"]["code"].as_str().unwrap()), (400, "Request_BadRequest"));
    assert_eq!(send(&t, reqwest::Method::GET, one.clone(), &ga, None).await.1["features"]["passwordSyncEnabled"], true);
    // typed bodies: a wrong type or an unknown name is Request_BadRequest naming it, bytes that
    // are not JSON Graph's "Unable to read JSON request payload"; the caller is checked first
    let (s, b) = send(&t, reqwest::Method::PATCH, lab.clone(), &ga, Some(r#"{"allowUnlockWithoutReset":"yes"}"#)).await;
    assert_eq!((s, b["error"]["code"].as_str().unwrap()), (400, "Request_BadRequest"));
    let (s, b) = send(&t, reqwest::Method::PATCH, lab.clone(), &ga, Some(r#"{"writeBackPassword":true}"#)).await;
    assert!(s == 400 && b["error"]["message"].as_str().unwrap().contains("unknown field `writeBackPassword`"), "{b}");
    let (s, b) = send(&t, reqwest::Method::PATCH, lab.clone(), &ga, Some("[1,2")).await;
    assert_eq!((s, b["error"]["code"].as_str().unwrap()), (400, "BadRequest"));
    assert!(b["error"]["innerError"]["date"].is_string(), "Graph's error shape: {b}");
    assert_eq!(send(&t, reqwest::Method::PATCH, lab.clone(), "not-a-token", Some("[1,2")).await.0, 401);
    assert_eq!(send(&t, reqwest::Method::GET, lab.clone(), &ga, None).await.1["allowUnlockWithoutReset"], true, "refusals changed nothing");
    // only a Global Administrator, and no app (Graph offers no application permission here)
    let hd = user_token(&t, "helpdesk@testlab.example", "Help-Desk-Pa55!").await.1["access_token"].as_str().unwrap().to_string();
    assert_eq!(send(&t, reqwest::Method::GET, sync.clone(), &hd, None).await.0, 403);
    assert_eq!(send(&t, reqwest::Method::PATCH, lab.clone(), &hd, Some(r#"{"writeBackPasswords":true}"#)).await.0, 403);
    let app = app_token(&t).await;
    assert_eq!(send(&t, reqwest::Method::GET, sync, &app, None).await.0, 403);
    assert_eq!(send(&t, reqwest::Method::GET, lab, &hd, None).await.0, 403);
}

async fn reset_method(t: &TestLab, user: &str, bearer: &str, body: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = format!("{}/users/{user}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword", t.info().tenant.graph);
    let mut req = t.http().post(url).bearer_auth(bearer);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (status, headers, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

async fn poll(t: &TestLab, location: &str, bearer: &str) -> Value {
    t.http().get(location).bearer_auth(bearer).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_password_on_the_password_method_is_an_operation_that_writeback_decides_for_synced_users() {
    install_crypto();
    let t = TestLab::start().await;
    let hd = user_token(&t, "helpdesk@testlab.example", "Help-Desk-Pa55!").await.1["access_token"].as_str().unwrap().to_string();
    // the password method's fixed id
    let (_, _, methods) = graph(&t, "/users/user5@testlab.onmicrosoft.com/authentication/passwordMethods", Some(&hd)).await;
    assert_eq!(methods["value"][0]["id"], "28c10230-6103-485e-b985-444c60001490");

    // a cloud-only user, no password given: the service makes one; 202 + Location
    let (s, headers, body) = reset_method(&t, "user5@testlab.onmicrosoft.com", &hd, None).await;
    assert_eq!(s, 202, "{body}");
    let generated = body["newPassword"].as_str().expect("a generated password").to_string();
    assert!(
        generated.len() == 8 && generated.chars().next().unwrap().is_ascii_uppercase() && generated.ends_with(|c: char| c.is_ascii_digit()),
        "{generated}"
    );
    let location = headers["location"].to_str().unwrap().to_string();
    assert!(location.contains("/authentication/operations/"), "{location}");
    let op = poll(&t, &location, &hd).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    // the user must change it at next sign-in
    assert_eq!(aadsts(&user_token(&t, "user5@testlab.onmicrosoft.com", &generated).await.1), 50055);

    // a synced user: the new password is required...
    let (s, _, e) = reset_method(&t, "user1@testlab.example", &hd, Some("{}")).await;
    assert_eq!((s, e["error"]["code"].as_str().unwrap()), (400, "Request_BadRequest"));
    // ...and writeback decides: off → the operation fails, nothing changes anywhere
    let (s, headers, _) = reset_method(&t, "user1@testlab.example", &hd, Some(r#"{"newPassword":"Through-Writeback-1"}"#)).await;
    assert_eq!(s, 202);
    let op = poll(&t, headers["location"].to_str().unwrap(), &hd).await;
    assert_eq!((op["status"].as_str().unwrap(), op["statusDetail"].as_str().unwrap()), ("failed", "SSPR_0010"));
    // on, but no engine connected: failed as the on-premises side can't be reached
    let tn = t.info().tenant.clone();
    let ga = user_token(&t, &tn.admin_upn, &tn.admin_password).await.1["access_token"].as_str().unwrap().to_string();
    let sync = format!("{}/directory/onPremisesSynchronization/{}", tn.graph, tn.tenant_id);
    assert_eq!(send(&t, reqwest::Method::PATCH, sync, &ga, Some(r#"{"features":{"passwordWritebackEnabled":true}}"#)).await.0, 204);
    let (_, headers, _) = reset_method(&t, "user1@testlab.example", &hd, Some(r#"{"newPassword":"Through-Writeback-1"}"#)).await;
    let op = poll(&t, headers["location"].to_str().unwrap(), &hd).await;
    assert_eq!((op["status"].as_str().unwrap(), op["statusDetail"].as_str().unwrap()), ("failed", "SSPR_0030"));
    assert_eq!(user_token(&t, "user1@testlab.example", "Summer-Lake-41").await.0, 200);
    let mut l = t.connect(Via::Ldaps).await;
    assert_eq!(l.simple_bind("TESTLAB\\User1", "Summer-Lake-41").await.unwrap().rc, 0);

    // never on one's own account; the role table; apps not supported; unknown method id
    assert_eq!(reset_method(&t, "helpdesk@testlab.example", &hd, Some(r#"{"newPassword":"Own-Account-Pass-1"}"#)).await.0, 403);
    assert_eq!(reset_method(&t, "labadmin@testlab.onmicrosoft.com", &hd, Some(r#"{"newPassword":"Not-Allowed-Pass-1"}"#)).await.0, 403);
    let app = app_token(&t).await;
    assert_eq!(reset_method(&t, "user5@testlab.onmicrosoft.com", &app, None).await.0, 403);
    let r = t
        .http()
        .post(format!("{}/users/user5@testlab.onmicrosoft.com/authentication/methods/not-a-method/resetPassword", tn.graph))
        .bearer_auth(&hd)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // the audit says who and through which on-premises agent
    let log = graph(&t, "/auditLogs/directoryAudits?$filter=activityDisplayName eq 'Reset password (by admin)'", Some(&app)).await.2;
    let entries = log["value"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["additionalDetails"], json!([{ "key": "OnPremisesAgent", "value": "Microsoft Entra Connect" }]));
    assert_eq!(entries[2]["additionalDetails"], json!([{ "key": "OnPremisesAgent", "value": "None" }]));
    assert_eq!(entries[2]["result"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_and_deleted_as_graph_does_it() {
    install_crypto();
    let t = TestLab::start().await;
    let base = t.info().tenant.graph.clone();
    let app = app_token(&t).await;
    let new = json!({
        "accountEnabled": true, "displayName": "Cloud Carol", "mailNickname": "carol",
        "userPrincipalName": "carol@testlab.onmicrosoft.com",
        "passwordProfile": { "forceChangePasswordNextSignIn": false, "password": "Carol-Cloud-Pass-7" }
    });
    let r = t.http().post(format!("{base}/users")).bearer_auth(&app).json(&new).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["userPrincipalName"], "carol@testlab.onmicrosoft.com");
    assert!(location.ends_with(created["id"].as_str().unwrap()));
    assert_eq!(user_token(&t, "carol@testlab.onmicrosoft.com", "Carol-Cloud-Pass-7").await.0, 200);

    // Graph's refusals, and nothing created
    let mut dup = new.clone();
    dup["displayName"] = json!("Another Carol");
    let cases = [
        (dup, "Another object with the same value for property userPrincipalName already exists."),
        (
            json!({ "accountEnabled": true, "displayName": "X", "mailNickname": "x", "userPrincipalName": "x@not-ours.example", "passwordProfile": { "password": "Fine-Pass-123" } }),
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        ),
        (
            json!({ "accountEnabled": true, "displayName": "X", "userPrincipalName": "x@testlab.example", "passwordProfile": { "password": "Fine-Pass-123" } }),
            "Invalid value specified for property 'mailNickname' of resource 'User'.",
        ),
        (
            json!({ "accountEnabled": true, "displayName": "Weak", "mailNickname": "weak", "userPrincipalName": "weak@testlab.example", "passwordProfile": { "password": "weakpass" } }),
            "The specified password does not comply with password complexity requirements. Please provide a different password.",
        ),
    ];
    for (body, message) in cases {
        let r = t.http().post(format!("{base}/users")).bearer_auth(&app).json(&body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["message"], message);
    }
    let all = graph_list_count(&t, &app).await;
    assert_eq!(all, 8, "seven seeded users and Carol");
    // a Helpdesk Administrator may not create or delete users
    let hd = user_token(&t, "helpdesk@testlab.example", "Help-Desk-Pa55!").await.1["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        t.http().delete(format!("{base}/users/carol@testlab.onmicrosoft.com")).bearer_auth(&hd).send().await.unwrap().status().as_u16(),
        403
    );
    // deleting: 204, then gone (sign-in answers an unknown user)
    assert_eq!(
        t.http().delete(format!("{base}/users/carol@testlab.onmicrosoft.com")).bearer_auth(&app).send().await.unwrap().status().as_u16(),
        204
    );
    assert_eq!(graph(&t, "/users/carol@testlab.onmicrosoft.com", Some(&app)).await.0, 404);
    assert_eq!(aadsts(&user_token(&t, "carol@testlab.onmicrosoft.com", "Carol-Cloud-Pass-7").await.1), 50034);
}

async fn graph_list_count(t: &TestLab, bearer: &str) -> usize {
    graph(t, "/users?$select=id", Some(bearer)).await.2["value"].as_array().unwrap().len()
}

/// `offline_access` brings a refresh token; the refresh grant gives a new access token and the
/// next refresh token (the redeemed one stays valid: Entra does not revoke it); a password
/// change revokes them all with AADSTS50173, as Entra revokes refresh tokens when a password
/// changes or is reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_renew_stay_valid_when_redeemed_and_a_password_change_revokes_them() {
    install_crypto();
    let t = TestLab::start().await;
    let client_id = t.info().tenant.client_id.clone();
    let (user, password) = ("user5@testlab.onmicrosoft.com", "Amber-Cloud-62!");
    let signed_in = |scope: &'static str| {
        let client_id = client_id.clone();
        let t = &t;
        async move {
            token(t, &[("grant_type", "password"), ("client_id", &client_id), ("username", user), ("password", password), ("scope", scope)])
                .await
        }
    };
    let (_, without) = signed_in("https://graph.microsoft.com/.default openid").await;
    assert!(without.get("refresh_token").is_none(), "no offline_access, no refresh token: {without}");
    let (s, first) = signed_in("https://graph.microsoft.com/.default openid profile offline_access").await;
    assert_eq!(s, 200, "{first}");
    let rt1 = first["refresh_token"].as_str().expect("a refresh token").to_string();
    let refresh = |rt: String, client: String| {
        let t = &t;
        async move {
            token(
                t,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client),
                    ("refresh_token", &rt),
                    ("scope", "https://graph.microsoft.com/.default offline_access openid"),
                ],
            )
            .await
        }
    };
    // another client cannot redeem it, and trying does not spend it
    let (s, e) = refresh(rt1.clone(), uuid::Uuid::new_v4().to_string()).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unauthorized_client")), "{e}");
    let (s, second) = refresh(rt1.clone(), client_id.clone()).await;
    assert_eq!(s, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().expect("the next refresh token").to_string();
    assert_ne!(rt1, rt2);
    assert!(second["id_token"].is_string());
    let (_, h, me) = graph(&t, "/me", second["access_token"].as_str()).await;
    assert_eq!(me["userPrincipalName"], user, "{h:?}");
    // the redeemed token still works ("doesn't revoke old refresh tokens when used")
    let (s, again) = refresh(rt1.clone(), client_id.clone()).await;
    assert_eq!(s, 200, "{again}");
    assert_ne!(again["refresh_token"], second["refresh_token"]);
    // the user changes the password: the chain is revoked
    let (s, _) = send(
        &t,
        reqwest::Method::POST,
        format!("{}/me/changePassword", t.info().tenant.graph),
        second["access_token"].as_str().unwrap(),
        Some(r#"{"currentPassword":"Amber-Cloud-62!","newPassword":"Violet-Harbour-88!"}"#),
    )
    .await;
    assert_eq!(s, 204);
    for rt in [rt1, rt2] {
        let (s, e) = refresh(rt, client_id.clone()).await;
        assert_eq!((s, e["error"].as_str(), aadsts(&e)), (400, Some("invalid_grant"), 50173), "{e}");
        assert!(e["error_description"].as_str().unwrap().contains("changed or reset their password"), "{e}");
    }
}

/// OpenID Connect's UserInfo at the discovery document's `userinfo_endpoint` (issue 34): a
/// user's access token answers the user, with the id token's `sub`; an app's token and no
/// token are Graph's 401 with its challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_answers_the_signed_in_user_as_the_id_token_names_them() {
    install_crypto();
    let t = TestLab::start().await;
    let discovery: Value = t
        .http()
        .get(format!("{}/v2.0/.well-known/openid-configuration", t.info().tenant.authority))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = discovery["userinfo_endpoint"].as_str().unwrap().to_string();
    let (s, body) = user_token(&t, "user1@testlab.example", "Summer-Lake-41").await;
    assert_eq!(s, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    for (method, via) in [(reqwest::Method::GET, "GET"), (reqwest::Method::POST, "POST")] {
        let r = t.http().request(method, &endpoint).bearer_auth(body["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{via}");
        let info: Value = r.json().await.unwrap();
        assert_eq!(info["sub"], claims["sub"], "{via}: {info}");
        assert_eq!((info["name"].as_str(), info["given_name"].as_str()), (Some("User1"), Some("User1")), "{info}");
    }
    let r = t.http().get(&endpoint).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let app = app_token(&t).await;
    let r = t.http().get(&endpoint).bearer_auth(app).send().await.unwrap();
    assert_eq!(r.status(), 401, "an app's token names no user");
    t.stop().await;
}
