//! Graph's query options as the SDKs send them, over real HTTPS with reqwest: `$filter`,
//! `$search`, `$orderby`, `$count` with `ConsistencyLevel: eventual`, `$top` and
//! `@odata.nextLink` paging, what Graph refuses without advanced queries; memberships;
//! app registrations used for sign-ins; `$batch`.

use hybrid_lab_tests::TestLab;
use serde_json::{Value, json};

async fn get(t: &TestLab, token: &str, path: &str, advanced: bool) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("https://") { path.to_string() } else { format!("{}{path}", t.info().tenant.graph) };
    let mut req = t.http().get(url).bearer_auth(token).header("client-request-id", "5f9a3c1e-0000-4000-8000-000000000001");
    if advanced {
        req = req.header("ConsistencyLevel", "eventual");
    }
    let r = req.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (s, h, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn upns(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap_or_default().to_lowercase())
        .collect()
}

fn error(body: &Value) -> (&str, &str) {
    (body["error"]["code"].as_str().unwrap_or_default(), body["error"]["message"].as_str().unwrap_or_default())
}

async fn make_users(t: &TestLab, token: &str, n: usize) {
    for i in 0..n {
        let body = json!({
            "accountEnabled": i % 5 != 0,
            "displayName": format!("Pager {i:03}"),
            "mailNickname": format!("pager{i:03}"),
            "userPrincipalName": format!("pager{i:03}@testlab.example"),
            "passwordProfile": { "password": format!("Paging-Pass-{i:03}-Xy"), "forceChangePasswordNextSignIn": false },
        });
        let (s, b) = t.call("POST", "/v1.0/users", Some(token), Some(body)).await;
        assert_eq!(s, 201, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_search_order_count_and_paging_answer_as_graph_does() {
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    make_users(&t, &admin, 25).await;

    // the filters SDKs send
    let (s, _, b) = get(&t, &admin, "/users?$filter=startswith(displayName,'Pager 00')", false).await;
    assert_eq!((s, upns(&b).len()), (200, 10), "{b}");
    let (_, _, b) = get(
        &t,
        &admin,
        "/users?$filter=userPrincipalName in ('pager001@testlab.example','user1@testlab.example','nobody@x.example')",
        false,
    )
    .await;
    assert_eq!(upns(&b), ["pager001@testlab.example", "user1@testlab.example"]);
    let (_, _, b) = get(&t, &admin, "/users?$filter=accountEnabled eq false and startswith(userPrincipalName,'pager')", false).await;
    assert_eq!(upns(&b).len(), 5);
    let (_, _, b) =
        get(&t, &admin, "/users?$filter=onPremisesSyncEnabled eq true&$select=userPrincipalName,onPremisesSyncEnabled", false).await;
    assert!(upns(&b).contains(&"user1@testlab.example".to_string()) && !upns(&b).iter().any(|u| u.starts_with("pager")), "{b}");
    assert_eq!(b["value"][0].as_object().unwrap().len(), 2, "$select: {b}");
    let (_, _, b) = get(&t, &admin, "/users?$filter=onPremisesImmutableId eq null and startswith(displayName,'Pager 02')", false).await;
    assert_eq!(upns(&b).len(), 5, "nulls: {b}");
    let (_, _, b) = get(
        &t,
        &admin,
        "/users?$filter=assignedLicenses/any(x:x/skuId eq 078d2b04-f1bd-4111-bbd4-b4b1b354cef4) or displayName eq 'Pager 003'",
        false,
    )
    .await;
    assert!(upns(&b).contains(&"user1@testlab.example".to_string()) && upns(&b).contains(&"pager003@testlab.example".to_string()), "{b}");

    // what Graph serves only in an advanced query
    let (s, h, b) = get(&t, &admin, "/users?$filter=accountEnabled ne true", false).await;
    assert_eq!((s, error(&b).0), (400, "Request_UnsupportedQuery"));
    assert!(error(&b).1.starts_with("Operator 'ne' is not supported because the required parameters might be missing."), "{b}");
    assert_eq!(b["error"]["innerError"]["client-request-id"], "5f9a3c1e-0000-4000-8000-000000000001", "the request's own id");
    assert_eq!(b["error"]["innerError"]["request-id"].as_str(), h["request-id"].to_str().ok());
    let (_, _, disabled) = get(&t, &admin, "/users?$filter=accountEnabled eq false", false).await;
    let (s, _, b) = get(&t, &admin, "/users?$filter=accountEnabled ne true&$count=true", true).await;
    assert_eq!((s, b["@odata.count"].as_u64()), (200, Some(upns(&disabled).len() as u64)), "{b}");
    assert!(upns(&disabled).len() >= 5);
    let (s, _, b) = get(&t, &admin, "/users?$filter=endswith(userPrincipalName,'7@testlab.example')&$count=true", true).await;
    assert_eq!((s, upns(&b)), (200, vec!["pager007@testlab.example".to_string(), "pager017@testlab.example".to_string()]));
    // $count=true without the header is ignored, silently
    let (_, _, b) = get(&t, &admin, "/users?$count=true", false).await;
    assert!(b.get("@odata.count").is_none());
    let (s, _, b) = get(&t, &admin, "/users/$count", false).await;
    assert_eq!((s, error(&b)), (400, ("Request_BadRequest", "$count is not currently supported.")));
    let (s, _, b) = get(&t, &admin, "/users/$count?$filter=startswith(displayName,'Pager')", true).await;
    assert_eq!((s, b), (200, json!(25)));

    // $orderby, and with a filter only in an advanced query
    let (_, _, b) = get(&t, &admin, "/users?$orderby=displayName desc&$top=3&$select=displayName", false).await;
    assert_eq!(b["value"][0]["displayName"], "User5 (cloud)", "{b}");
    let (s, _, b) = get(&t, &admin, "/users?$orderby=displayName&$filter=startswith(displayName,'Pager')", false).await;
    assert_eq!((s, error(&b)), (400, ("Request_UnsupportedQuery", "Sorting not supported for current query.")));
    let (s, _, b) =
        get(&t, &admin, "/users?$orderby=displayName desc&$filter=startswith(displayName,'Pager')&$count=true&$top=1", true).await;
    assert_eq!((s, upns(&b)), (200, vec!["pager024@testlab.example".to_string()]));
    // $search: the header, quotes, words
    let (s, _, b) = get(&t, &admin, "/users?$search=\"displayName:pager\"", false).await;
    assert_eq!(
        (s, error(&b).1),
        (
            400,
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"
        )
    );
    let (s, _, b) = get(&t, &admin, "/users?$search=\"displayName:012\" OR \"displayName:013\"", true).await;
    assert_eq!((s, upns(&b).len()), (200, 2), "{b}");

    // paging: $top and @odata.nextLink through every user exactly once
    let (_, _, all) = get(&t, &admin, "/users?$top=999", false).await;
    let total = upns(&all).len();
    let mut seen = vec![];
    let mut next = "/users?$top=7&$select=userPrincipalName".to_string();
    let mut pages = 0;
    loop {
        let (s, _, b) = get(&t, &admin, &next, false).await;
        assert_eq!(s, 200, "{b}");
        pages += 1;
        seen.extend(upns(&b));
        match b["@odata.nextLink"].as_str() {
            Some(n) => next = n.to_string(),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (total, total.div_ceil(7)));
    seen.dedup();
    assert_eq!(seen.len(), total, "no user twice");
    for bad in ["/users?$top=0", "/users?$top=1000", "/users?$skiptoken=forged"] {
        assert_eq!(get(&t, &admin, bad, false).await.0, 400, "{bad}");
    }
    let (s, _, b) = get(&t, &admin, "/users?$filter=jobTitle eq 'x' or (displayName eq 'y'", false).await;
    assert_eq!((s, error(&b).0), (400, "BadRequest"), "{b}");
    let (s, _, b) = get(&t, &admin, "/users?$filter=officeLocation eq 'x'", false).await;
    assert_eq!(
        error(&b),
        (
            "Request_UnsupportedQuery",
            "Unsupported or invalid query filter clause specified for property 'officeLocation' of resource 'User'."
        )
    );
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memberships_direct_and_transitive_and_the_checks() {
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let (_, outer) = t
        .call(
            "POST",
            "/v1.0/groups",
            Some(&admin),
            Some(json!({ "displayName": "Outer", "mailEnabled": false, "mailNickname": "outer", "securityEnabled": true })),
        )
        .await;
    let (_, pw) = t.call("GET", "/v1.0/groups?$filter=displayName eq 'PWReset'", Some(&admin), None).await;
    let (outer, pw) = (outer["id"].as_str().unwrap().to_string(), pw["value"][0]["id"].as_str().unwrap().to_string());
    let member = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{pw}") });
    assert_eq!(t.call("POST", &format!("/v1.0/groups/{outer}/members/$ref"), Some(&admin), Some(member)).await.0, 204);
    let user1 = t.user_token("user1@testlab.example", "Summer-Lake-41").await;
    let ids = |b: &Value| b["value"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (s, _, direct) = get(&t, &user1, "/me/memberOf", false).await;
    assert_eq!((s, ids(&direct)), (200, vec![pw.clone()]));
    assert_eq!(direct["value"][0]["@odata.type"], "#microsoft.graph.group");
    let (_, _, all) = get(&t, &admin, "/users/user1@testlab.example/transitiveMemberOf", false).await;
    assert!(ids(&all).contains(&outer) && ids(&all).contains(&pw), "{all}");
    let (_, _, admins) = get(&t, &admin, "/me/memberOf", false).await;
    assert!(
        admins["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["@odata.type"] == "#microsoft.graph.directoryRole" && r["displayName"] == "Global Administrator"),
        "{admins}"
    );
    let (s, b) = t
        .call(
            "POST",
            "/v1.0/me/checkMemberGroups",
            Some(&user1),
            Some(json!({ "groupIds": [outer, "00000000-0000-0000-0000-000000000000"] })),
        )
        .await;
    assert_eq!((s, &b["value"]), (200, &json!([outer])));
    let (s, b) = t
        .call("POST", "/v1.0/users/user1@testlab.example/getMemberObjects", Some(&admin), Some(json!({ "securityEnabledOnly": true })))
        .await;
    assert_eq!((s, b["value"].as_array().unwrap().len()), (200, 2), "{b}");
    let many: Vec<String> = (0..21).map(|i| format!("00000000-0000-0000-0000-{i:012}")).collect();
    assert_eq!(t.call("POST", "/v1.0/me/checkMemberGroups", Some(&user1), Some(json!({ "groupIds": many }))).await.0, 400);
    // another user's memberships need a directory permission
    let user4 = t.user_token("user4@testlab.example", "Copper-River-93").await;
    let (s, _, _) = get(&t, &user4, "/users/user1@testlab.example/memberOf", false).await;
    assert_eq!(s, 200, "User.ReadBasic.All is the lab client's");
    let app = t.app_token().await;
    assert_eq!(get(&t, &app, "/me/memberOf", false).await.0, 400, "an app has no /me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_registered_over_graph_signs_in_with_its_own_secret_and_redirect_uri() {
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let tn = t.info().tenant.clone();
    let body = json!({ "displayName": "My web app", "web": { "redirectUris": ["https://app.example/signin-oidc"] } });
    let (s, app) = t.call("POST", "/v1.0/applications", Some(&admin), Some(body)).await;
    assert_eq!(s, 201, "{app}");
    let (object_id, client_id) = (app["id"].as_str().unwrap().to_string(), app["appId"].as_str().unwrap().to_string());
    assert_ne!(object_id, client_id);
    assert_eq!(app["isFallbackPublicClient"], false);
    let (s, b) = t
        .call(
            "POST",
            "/v1.0/applications",
            Some(&admin),
            Some(json!({ "displayName": "x", "web": { "redirectUris": ["http://app.example/cb"] } })),
        )
        .await;
    assert_eq!(s, 400, "plain http is for localhost only: {b}");
    for bad in ["javascript://x%0Aalert(1)", "data://text/html,x", "http://app.example/cb"] {
        let (s, b) = t
            .call(
                "POST",
                "/v1.0/applications",
                Some(&admin),
                Some(json!({ "displayName": "x", "publicClient": { "redirectUris": [bad] } })),
            )
            .await;
        assert_eq!(s, 400, "a browser's own scheme is no app's redirect URI: {bad} {b}");
    }
    let (s, _) = t
        .call(
            "POST",
            "/v1.0/applications",
            Some(&admin),
            Some(json!({ "displayName": "desktop", "publicClient": { "redirectUris": ["msal1234://auth"] } })),
        )
        .await;
    assert_eq!(s, 201, "a desktop app's own scheme");
    let user = t.user_token("user1@testlab.example", "Summer-Lake-41").await;
    assert_eq!(t.call("POST", "/v1.0/applications", Some(&user), Some(json!({ "displayName": "mine" }))).await.0, 403);

    let (s, secret) = t
        .call(
            "POST",
            &format!("/v1.0/applications/{object_id}/addPassword"),
            Some(&admin),
            Some(json!({ "passwordCredential": { "displayName": "ci" } })),
        )
        .await;
    assert_eq!(s, 200, "{secret}");
    let text = secret["secretText"].as_str().unwrap().to_string();
    assert_eq!((text.len(), &text[3..4], secret["hint"].as_str().unwrap()), (40, "~", &text[..3]));
    let (_, read) = t.call("GET", &format!("/v1.0/applications/{object_id}"), Some(&admin), None).await;
    assert_eq!(read["passwordCredentials"][0]["secretText"], Value::Null, "shown once");
    let (s, sp) = t.call("POST", "/v1.0/servicePrincipals", Some(&admin), Some(json!({ "appId": client_id }))).await;
    assert_eq!((s, &sp["appId"]), (201, &json!(client_id)));
    assert_eq!(t.call("POST", "/v1.0/servicePrincipals", Some(&admin), Some(json!({ "appId": client_id }))).await.0, 409);
    let (_, listed) = t.call("GET", &format!("/v1.0/applications?$filter=appId eq '{client_id}'"), Some(&admin), None).await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 1, "{listed}");

    let token = |secret: String| {
        let (t, tn, client_id) = (&t, &tn, client_id.clone());
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
            ];
            let r = t.http().post(format!("{}/oauth2/v2.0/token", tn.authority)).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(token(text.clone()).await.0, 200);
    // the app's redirect URI, and no other, takes the code; a web app proves itself with its secret
    let redirect = "https://app.example/signin-oidc";
    let q = serde_urlencoded::to_string([
        ("client_id", client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", redirect),
        ("scope", "openid User.Read"),
        ("state", "s"),
    ])
    .unwrap();
    let browser = t.http_no_redirects();
    let page = browser
        .get(format!("{}/oauth2/v2.0/authorize?{q}&login_hint=user1@testlab.example", tn.authority))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&page);
    let ctx = doc.select(&scraper::Selector::parse("input[name=ctx]").unwrap()).next().unwrap().value().attr("value").unwrap().to_string();
    let origin = tn.authority.split('/').take(3).collect::<Vec<_>>().join("/");
    let form = [("ctx", ctx.as_str()), ("step", "password"), ("loginfmt", "user1@testlab.example"), ("passwd", "Summer-Lake-41")];
    let r = browser.post(format!("{}/login", tn.authority)).header("Origin", origin).form(&form).send().await.unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(redirect), "{location}");
    let code = serde_urlencoded::from_str::<Vec<(String, String)>>(location.split_once('?').unwrap().1)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1;
    let redeem = |secret: Option<&str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
        ];
        if let Some(s) = secret {
            form.push(("client_secret", s));
        }
        let req = t.http().post(format!("{}/oauth2/v2.0/token", tn.authority)).form(&form);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, b) = redeem(None).await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (401, Some(7000218)), "{b}");
    let (s, b) = redeem(Some(&text)).await;
    assert_eq!(s, 200, "{b}");

    // the secret removed: refused
    let key = secret["keyId"].as_str().unwrap();
    assert_eq!(
        t.call("POST", &format!("/v1.0/applications/{object_id}/removePassword"), Some(&admin), Some(json!({ "keyId": key }))).await.0,
        204
    );
    let (s, b) = token(text).await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (401, Some(7000215)));
    // not a public client: no device code, no password grant without a secret
    let form = [("client_id", client_id.as_str()), ("scope", "openid")];
    let r = t.http().post(format!("{}/oauth2/v2.0/devicecode", tn.authority)).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        t.call("PATCH", &format!("/v1.0/applications/{object_id}"), Some(&admin), Some(json!({ "isFallbackPublicClient": true }))).await.0,
        204
    );
    let r = t.http().post(format!("{}/oauth2/v2.0/devicecode", tn.authority)).form(&form).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "allowed once it is a public client");
    assert_eq!(t.call("DELETE", &format!("/v1.0/applications/{object_id}"), Some(&admin), None).await.0, 204);
    assert_eq!(token("anything".into()).await.0, 400, "a deleted app is unknown (700016)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_request_as_if_sent_alone() {
    let t = TestLab::start().await;
    let user1 = t.user_token("user1@testlab.example", "Summer-Lake-41").await;
    let batch = json!({ "requests": [
        { "id": "1", "method": "GET", "url": "/me?$select=userPrincipalName" },
        { "id": "2", "method": "GET", "url": "/users?$filter=accountEnabled ne true&$count=true", "headers": { "ConsistencyLevel": "eventual" } },
        { "id": "3", "method": "GET", "url": "/users/nobody@testlab.example" },
        { "id": "4", "method": "POST", "url": "/me/checkMemberGroups", "body": { "groupIds": [] }, "headers": { "Content-Type": "application/json" } },
    ]});
    let (s, b) = t.call("POST", "/v1.0/$batch", Some(&user1), Some(batch)).await;
    assert_eq!(s, 200, "{b}");
    let r = |id: &str| b["responses"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(
        (r("1")["status"].as_u64(), r("1")["body"]["userPrincipalName"].as_str().map(str::to_lowercase)),
        (Some(200), Some("user1@testlab.example".into()))
    );
    assert_eq!(r("2")["status"], 200);
    assert!(r("2")["body"]["@odata.count"].is_u64());
    assert_eq!((r("3")["status"].as_u64(), r("3")["body"]["error"]["code"].as_str()), (Some(404), Some("Request_ResourceNotFound")));
    assert_eq!(r("4")["status"], 200);
    for bad in [
        json!({ "requests": (0..21).map(|i| json!({ "id": i.to_string(), "method": "GET", "url": "/me" })).collect::<Vec<_>>() }),
        json!({ "requests": [{ "id": "1", "method": "GET", "url": "/me" }, { "id": "1", "method": "GET", "url": "/me" }] }),
        json!({ "requests": [{ "id": "1", "method": "GET", "url": "/lab/outbox" }] }),
        json!({ "requests": [{ "id": "1", "method": "GET", "url": "https://evil.example/" }] }),
        json!({ "requests": [{ "id": "1", "method": "GET", "url": "/../lab/outbox" }] }),
    ] {
        assert_eq!(t.call("POST", "/v1.0/$batch", Some(&user1), Some(bad.clone())).await.0, 400, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_directory_quota_graph_creates_nothing_more() {
    let t = TestLab::start().await;
    let admin = t.admin_token().await;
    let (s, all) = t.call("GET", "/v1.0/users?$top=999&$select=id", Some(&admin), None).await;
    assert_eq!(s, 200);
    // the lab's switch (as a fixture sets one): a quota of what the tenant holds now, plus one
    {
        let mut tenant = t.lab.tenant.tenant.lock().unwrap();
        let groups = tenant.groups().len();
        tenant.object_quota = all["value"].as_array().unwrap().len() + groups + 1 /* the lab's app */ + 1;
    }
    let app = json!({ "displayName": "one more" });
    assert_eq!(t.call("POST", "/v1.0/applications", Some(&admin), Some(app.clone())).await.0, 201);
    for (path, body) in [
        ("/v1.0/applications", app),
        ("/v1.0/groups", json!({ "displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true })),
        (
            "/v1.0/users",
            json!({ "accountEnabled": true, "displayName": "U", "mailNickname": "u", "userPrincipalName": "u@testlab.example", "passwordProfile": { "password": "Quota-Pass-123!" } }),
        ),
    ] {
        let (s, b) = t.call("POST", path, Some(&admin), Some(body)).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("Directory_QuotaExceeded")), "{path}: {b}");
    }
}
