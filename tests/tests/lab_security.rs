//! Whoever can reach a running lab must not be able to take it over (issue #15, items 3 and
//! 4): the lab's switches and logs need its administrator on every listener, only the lab's
//! own host names are answered, cross-site writes and non-JSON bodies are refused, and no
//! two labs share a secret whatever their seeds.

use std::time::Duration;

use hybrid_lab_tests::{TestLab, Via, install_crypto};
use serde_json::{Value, json};

/// The lab's control surface: every switch and every log a trainee's lab keeps.
const CONTROLS: &[(&str, &str, Option<&str>)] = &[
    (
        "POST",
        "/lab/adds/rights",
        Some(r#"{"action":"grant","right":"Reset Password","trustee":"CN=User1,OU=Lab Users,DC=testlab,DC=example"}"#),
    ),
    ("GET", "/lab/adds/rights", None),
    ("POST", "/lab/adds/fault", Some(r#"{"state":"down"}"#)),
    ("GET", "/lab/adds/fault", None),
    ("GET", "/lab/adds/operations", None),
    ("POST", "/lab/engine/control", Some(r#"{"action":"stop"}"#)),
    ("GET", "/lab/engine", None),
    ("GET", "/lab/engine/events", None),
    ("GET", "/lab/engine/trace", None),
    ("GET", "/lab/outbox", None),
    ("GET", "/lab/clock", None),
    ("POST", "/lab/clock", Some(r#"{"advance":"1d"}"#)),
    ("GET", "/lab/sspr/policy", None),
    ("GET", "/lab/writeback/settings", None),
];

async fn raw(http: &reqwest::Client, base: &str, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> (u16, Value) {
    let mut r = http.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{base}{path}"));
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_string());
    }
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_labs_switches_and_logs_need_its_administrator_on_https_and_plain_http() {
    install_crypto();
    let t = TestLab::start_with(|c| c.engine = true).await;
    let user = t.user_token("user5@testlab.onmicrosoft.com", "Amber-Cloud-62!").await;
    let plain = reqwest::Client::new();
    for (http, base) in [(t.http(), t.info().tenant.https.clone()), (plain, t.info().tenant.http.clone())] {
        for (method, path, body) in CONTROLS {
            let (status, answer) = raw(&http, &base, method, path, *body, None).await;
            assert_eq!(status, 401, "{method} {base}{path} without a token: {answer}");
            assert_eq!(answer["error"]["code"], "InvalidAuthenticationToken");
            let (status, _) = raw(&http, &base, method, path, *body, Some(&user)).await;
            assert_eq!(status, 403, "{method} {base}{path} as a user who is no administrator");
        }
    }
    // nothing of that changed anything: the DC is up, the engine runs, User1 holds no right
    let (_, fault) = t.lab_call("GET", "/lab/adds/fault", None).await;
    assert_eq!(fault["state"], "up");
    let (_, engine) = t.lab_call("GET", "/lab/engine", None).await;
    assert_eq!(engine["running"], true);
    t.lab.clock.advance(Duration::from_secs(86_400));
    let mut l = t.connect(Via::Ldaps).await;
    assert_eq!(l.simple_bind("TESTLAB\\User1", "Summer-Lake-41").await.unwrap().rc, 0);
    let set = std::collections::HashSet::from([ad_ds::password::unicode_pwd("Taken-Over-Pass-1")]);
    let r = l.modify("CN=User4,OU=Lab Users,DC=testlab,DC=example", vec![ldap3::Mod::Replace(b"unicodePwd".to_vec(), set)]).await.unwrap();
    assert_eq!(r.rc, 50, "User1 cannot reset User4: {}", r.text);
    // the lab's administrator can, on either listener
    let admin = t.admin_token().await;
    let (status, _) = raw(&reqwest::Client::new(), &t.info().tenant.http, "GET", "/lab/engine/events", None, Some(&admin)).await;
    assert_eq!(status, 200);
    // and what a real user or engine reaches without a token still answers
    let (status, flow) = t.call("POST", "/lab/sspr/flows", None, Some(json!({ "userPrincipalName": "user1@testlab.example" }))).await;
    assert_eq!(status, 201, "{flow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_labs_host_names_same_site_writes_and_json_bodies_are_taken() {
    install_crypto();
    let t = TestLab::start_with(|c| c.engine = true).await;
    let http = t.http_no_redirects();
    let base = t.info().tenant.https.clone();
    let port = base.rsplit(':').next().unwrap().to_string();
    let admin = t.admin_token().await;
    // DNS rebinding: the lab's address under someone else's name
    for path in ["/portal/lab", "/lab/engine", "/v1.0/me", "/portal/sspr"] {
        let r =
            http.get(format!("{base}{path}")).header("host", format!("attacker.example:{port}")).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 421, "{path} under a foreign host name");
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("dc1.testlab.example:{port}")] {
        let r = http.get(format!("{base}/lab/engine")).header("host", host.clone()).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{host}");
    }
    // a page elsewhere posting to the dashboard's forms (with the trainee's cookie or not)
    let r = http
        .post(format!("{base}/portal/lab/clock"))
        .header("origin", "https://attacker.example")
        .form(&[("advance", "30d")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "cross-site form post");
    // the lab's own host name, another server on the machine: another site (issue 31, item 8)
    // (scheme alone cannot differ: the HTTPS port speaks only TLS, so no page is served from
    // http:// on it)
    for origin in ["http://localhost:8000", "https://localhost", "https://127.0.0.1:8443"] {
        let r = http.post(format!("{base}/portal/lab/engine")).header("origin", origin).form(&[("action", "stop")]).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "a page on {origin}");
    }
    let r = http
        .post(format!("{base}/portal/lab/engine"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("action", "stop")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a browser's cross-site mark");
    // same site, but nobody signed in: the sign-in page, nothing changed
    let r = http.post(format!("{base}/portal/lab/clock")).header("origin", base.clone()).form(&[("advance", "30d")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/portal/admin/signin?next=/portal/lab");
    let (_, clock) = t.lab_call("GET", "/lab/clock", None).await;
    assert_eq!(clock["now"], "2026-01-05T09:00:00Z", "the clock did not move");
    // the outbox is the administrator's too (its codes would finish anyone's reset)
    let r = http.get(format!("{base}/portal/outbox")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/portal/admin/signin?next=/portal/outbox"));
    // JSON APIs take JSON only: a form elsewhere cannot post one
    let r = http
        .post(format!("{base}/lab/sspr/flows"))
        .header("content-type", "text/plain")
        .body(r#"{"userPrincipalName":"user1@testlab.example"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UnsupportedMediaType");
}

/// Any tenant user may sign in to the admin center, as in Entra; the lab's own pages and slots
/// — the dashboard and its live stream, the exercise and its answers, the outbox — are its
/// Global Administrator's, and Entra Connect's wizard a Global or Hybrid Identity
/// Administrator's (issue 31, item 9: User1 had taken every live-dashboard slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_labs_pages_and_slots_need_its_administrator_not_just_a_sign_in() {
    install_crypto();
    let t = TestLab::start_with(|c| c.engine = true).await;
    let http = t.http_no_redirects();
    let base = t.info().tenant.https.clone();
    let lab_pages = ["/portal/lab", "/portal/lab/stream", "/portal/lab/exercise", "/portal/outbox", "/portal/connect/tasks"];
    let get = |path: &str, cookie: &str| http.get(format!("{base}{path}")).header("cookie", cookie).send();
    for (upn, password) in [("user1@testlab.example", "Summer-Lake-41"), labkit::testlab::HELPDESK] {
        let cookie = t.admin_center_cookie(upn, password).await;
        assert!(cookie.contains('='), "{upn} signs in to the admin center");
        let r = get("/portal/admin", &cookie).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{upn}: the admin center's user list");
        for path in lab_pages {
            let r = get(path, &cookie).await.unwrap();
            assert_eq!(r.status().as_u16(), 403, "{upn}: {path}");
            assert!(r.text().await.unwrap().contains("this page needs the lab tenant"), "{upn}: {path}");
        }
        // an answer to the exercise is refused too (and so counts for nothing)
        let r = http
            .post(format!("{base}/portal/lab/exercise/answer"))
            .header("cookie", &cookie)
            .header("origin", &base)
            .form(&[("task", "0"), ("answer", "6329")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{upn}: an exercise answer");
    }
    // every live-dashboard slot is still there for the administrator
    let admin = t.admin_cookie().await;
    for path in ["/portal/lab", "/portal/outbox", "/portal/connect/tasks"] {
        assert_eq!(get(path, &admin).await.unwrap().status().as_u16(), 200, "the administrator: {path}");
    }
    let streams: Vec<_> = futures::future::join_all((0..16).map(|_| get("/portal/lab/stream", &admin))).await;
    assert!(streams.iter().all(|r| r.as_ref().is_ok_and(|r| r.status().as_u16() == 200)), "all 16 live slots are the administrator's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_labs_with_one_seed_share_no_secret() {
    install_crypto();
    let a = TestLab::start_with(|c| c.engine = true).await;
    let b = TestLab::start().await; // the same seed, no engine
    // one OS user's signing key (made once, labkit::userkeys), each lab under a kid of its
    // own that the other's JWKS does not list: one lab's token is worthless at the other
    let jwks = |t: &TestLab| {
        let (http, url) = (t.http(), format!("{}/discovery/v2.0/keys", t.info().tenant.authority));
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let (ka, kb) = (jwks(&a).await, jwks(&b).await);
    assert_eq!(ka["keys"][0]["n"], kb["keys"][0]["n"], "the user's key");
    assert_ne!(ka["keys"][0]["kid"], kb["keys"][0]["kid"]);
    assert_eq!(kb["keys"].as_array().unwrap().len(), 1, "B lists its own kid only");
    let token_a = a.admin_token().await;
    let (status, _) = a.call("GET", "/v1.0/me", Some(&token_a), None).await;
    assert_eq!(status, 200, "A's token at A");
    let (status, body) = b.call("GET", "/v1.0/me", Some(&token_a), None).await;
    assert_eq!(status, 401, "a token of another lab, though signed with the same key: {body}");
    // the labs' CAs (their TLS keys) differ too
    let ca = |t: &TestLab| std::fs::read(&t.info().adds.ca_cert).unwrap();
    assert_ne!(ca(&a), ca(&b));
    // engine ids and relay credentials: a fresh registration at B is not A's engine, and its
    // credential opens nothing at A
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let public = relay::public_key_to_b64(&key.to_public_key());
    let token_b = b.admin_token().await;
    let (status, reg) =
        b.call("POST", "/lab/writeback/engines", Some(&token_b), Some(json!({ "displayName": "x", "publicKey": public }))).await;
    assert_eq!(status, 201, "{reg}");
    assert_ne!(reg["id"].as_str(), a.info().engine.as_ref().map(|e| e.id.as_str()));
    let export = json!({ "users": [], "deletes": [], "passwords": [] });
    let r = a
        .http()
        .post(format!("{}/lab/sync/export", a.info().tenant.https))
        .header("authorization", format!("Bearer {}", reg["relayCredential"].as_str().unwrap()))
        .json(&export)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "B's relay credential at A");
    // SSPR: flow ids and the codes sent differ
    let mut codes = vec![];
    for t in [&a, &b] {
        let (_, flow) =
            t.call("POST", "/lab/sspr/flows", None, Some(json!({ "userPrincipalName": "user5@testlab.onmicrosoft.com" }))).await;
        let id = flow["id"].as_str().unwrap().to_string();
        let (s, _) = t.call("POST", &format!("/lab/sspr/flows/{id}/codes"), None, Some(json!({ "method": "email" }))).await;
        assert_eq!(s, 202);
        let (_, outbox) = t.lab_call("GET", "/lab/outbox", None).await;
        codes.push((id, outbox["value"][0]["code"].as_str().unwrap().to_string()));
    }
    assert_ne!(codes[0].0, codes[1].0, "flow ids");
    assert_ne!(codes[0].1, codes[1].1, "first codes");
    // a generated temporary password (Graph's reset without a password) differs too
    let mut generated = vec![];
    for t in [&a, &b] {
        let token = t.admin_token().await;
        let (_, u) = t.call("GET", "/v1.0/users/user5@testlab.onmicrosoft.com?$select=id", Some(&token), None).await;
        let path =
            format!("/v1.0/users/{}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword", u["id"].as_str().unwrap());
        let r = t.http().post(format!("{}{path}", t.info().tenant.https)).bearer_auth(&token).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let answer: Value = r.json().await.unwrap();
        generated.push(answer["newPassword"].as_str().map(str::to_string));
    }
    assert!(generated[0].is_some(), "{generated:?}");
    assert_ne!(generated[0], generated[1]);
}
