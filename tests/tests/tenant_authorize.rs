//! The STS's interactive flows over real HTTPS with reqwest, as a browser walks them (a
//! cookie jar, no redirects followed): the authorization code flow with PKCE through the
//! sign-in pages, `prompt`, `response_mode`, redirect URIs, the session and sign-out, the
//! device code flow and its "Enter code" page, the "Update your password" interruption
//! written back to AD, and JWKS as Entra publishes it.

use base64::Engine;
use hybrid_lab_tests::TestLab;
use serde_json::{Value, json};

const USER1: (&str, &str) = ("user1@testlab.example", "Summer-Lake-41");
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://localhost:53123";

/// A browser: the lab's CA, the STS's session cookie kept, redirects shown rather than
/// followed, and a same-origin form post naming its origin.
struct Browser {
    http: reqwest::Client,
    origin: String,
    session: std::sync::Mutex<Option<String>>,
}

impl Browser {
    async fn send(&self, req: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie = self.session.lock().unwrap().clone();
        let req = match cookie {
            Some(c) => req.header("Cookie", format!("ESTSAUTH={c}")),
            None => req,
        };
        let r = req.send().await.unwrap();
        for c in r.headers().get_all("set-cookie") {
            if let Some(v) = c.to_str().unwrap().strip_prefix("ESTSAUTH=") {
                let v = v.split(';').next().unwrap();
                *self.session.lock().unwrap() = (!v.is_empty()).then(|| v.to_string());
            }
        }
        r
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.send(self.http.get(url)).await
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(self.http.post(url).header("Origin", &self.origin).form(form)).await
    }
}

fn browser(t: &TestLab) -> Browser {
    let origin = t.info().tenant.authority.split('/').take(3).collect::<Vec<_>>().join("/");
    Browser { http: t.http_no_redirects(), origin, session: Default::default() }
}

/// A field's value in a page's first form that has it, as a browser reads it.
fn field(html: &str, name: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
    doc.select(&sel).next().and_then(|e| e.value().attr("value")).unwrap_or_else(|| panic!("no field {name} in {html}")).to_string()
}

/// An element's attribute, as a browser reads it.
fn attr(html: &str, selector: &str, name: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel).next().and_then(|e| e.value().attr(name)).unwrap_or_else(|| panic!("no {selector} in {html}")).to_string()
}

fn authorize_url(t: &TestLab, extra: &[(&str, &str)]) -> String {
    let tn = &t.info().tenant;
    let mut q: Vec<(&str, &str)> = vec![
        ("client_id", tn.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile offline_access User.Read"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        q.retain(|(x, _)| x != k);
        if !v.is_empty() {
            q.push((k, v));
        }
    }
    format!("{}/oauth2/v2.0/authorize?{}", tn.authority, serde_urlencoded::to_string(&q).unwrap())
}

/// Posts a step of the sign-in pages.
async fn step(t: &TestLab, b: &Browser, html: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let ctx = field(html, "ctx");
    let mut f: Vec<(&str, &str)> = vec![("ctx", ctx.as_str())];
    f.extend_from_slice(form);
    b.post(&format!("{}/login", t.info().tenant.authority), &f).await
}

/// The query (or fragment) of a redirect's Location.
fn location_params(r: &reqwest::Response, sep: char) -> Vec<(String, String)> {
    assert_eq!(r.status().as_u16(), 302, "a redirect to the app");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = loc.split_once(sep).map(|(_, q)| q).unwrap_or_default();
    serde_urlencoded::from_str(q).unwrap()
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Walks the pages: username, then password; the answer to the password page.
async fn sign_in(t: &TestLab, b: &Browser, url: &str, upn: &str, password: &str) -> reqwest::Response {
    let page = b.get(url).await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"i0116\""), "the username page: {html}");
    let html = step(t, b, &html, &[("step", "username"), ("loginfmt", upn)]).await.text().await.unwrap();
    assert!(html.contains("id=\"i0118\"") && html.contains("Enter password"), "the password page: {html}");
    step(t, b, &html, &[("step", "password"), ("loginfmt", upn), ("passwd", password)]).await
}

async fn redeem(t: &TestLab, code: &str, verifier: &str) -> (u16, Value) {
    let tn = &t.info().tenant;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", tn.client_id.as_str()),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_info", "1"),
    ];
    let r = t.http().post(format!("{}/oauth2/v2.0/token", tn.authority)).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn aadsts(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or_else(|| panic!("no AADSTS code: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_with_pkce_signs_in_through_the_pages_and_the_code_is_good_once() {
    let t = TestLab::start().await;
    let b = browser(&t);
    let r = sign_in(&t, &b, &authorize_url(&t, &[]), USER1.0, USER1.1).await;
    let p = location_params(&r, '?');
    assert_eq!(param(&p, "state"), Some("st-123"));
    let code = param(&p, "code").expect("a code").to_string();
    assert!(b.session.lock().unwrap().is_some(), "a session");

    // the wrong verifier: refused, and the code is spent
    let (s, body) = redeem(&t, &code, "another-verifier-another-verifier-another-verifier").await;
    assert_eq!((s, aadsts(&body)), (400, 50148), "{body}");
    let (s, body) = redeem(&t, &code, VERIFIER).await;
    assert_eq!((s, aadsts(&body)), (400, 54005), "{body}");

    // a new code, redeemed as it should be
    let r = b.get(&authorize_url(&t, &[])).await;
    let code = param(&location_params(&r, '?'), "code").expect("SSO: a code at once, the session is there").to_string();
    let (s, body) = redeem(&t, &code, VERIFIER).await;
    assert_eq!(s, 200, "{body}");
    assert!(body["refresh_token"].is_string(), "offline_access was asked: {body}");
    assert!(body["client_info"].is_string());
    let id = claims(body["id_token"].as_str().unwrap());
    let tn = &t.info().tenant;
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["aud"], tn.client_id.as_str());
    assert_eq!(id["tid"], tn.tenant_id.as_str());
    assert_eq!(id["preferred_username"].as_str().map(str::to_lowercase).as_deref(), Some(USER1.0));
    assert_eq!(id["ver"], "2.0");
    for c in ["oid", "name", "sid", "uti", "sub"] {
        assert!(id[c].is_string(), "{c} in {id}");
    }
    // the id token validates against the JWKS, and userinfo names the same subject
    let jwks: Value = t.http().get(format!("{}/discovery/v2.0/keys", tn.authority)).send().await.unwrap().json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["use"], "sig");
    assert_eq!(key["issuer"], format!("{}/v2.0", tn.authority));
    let cert = base64::engine::general_purpose::STANDARD.decode(key["x5c"][0].as_str().unwrap()).unwrap();
    let (_, x509) = x509_parser::parse_x509_certificate(&cert).expect("x5c is a certificate");
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let x509::RsaPublic { modulus } = x509::rsa(&x509);
    assert_eq!(modulus.iter().skip_while(|b| **b == 0).collect::<Vec<_>>(), n.iter().collect::<Vec<_>>(), "x5c holds the key n names");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[tn.client_id.as_str()]);
    v.set_issuer(&[format!("{}/v2.0", tn.authority)]);
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(body["id_token"].as_str().unwrap(), &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &v)
        .expect("id token");
    let access = body["access_token"].as_str().unwrap();
    let (s, info) = t.call("GET", "/oidc/userinfo", Some(access), None).await;
    assert_eq!((s, &info["sub"]), (200, &id["sub"]));
}

mod x509 {
    pub struct RsaPublic {
        pub modulus: Vec<u8>,
    }
    pub fn rsa(c: &x509_parser::certificate::X509Certificate) -> RsaPublic {
        match c.public_key().parsed().expect("a key") {
            x509_parser::public_key::PublicKey::RSA(k) => RsaPublic { modulus: k.modulus.to_vec() },
            other => panic!("not RSA: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_uris_pkce_prompt_and_response_modes_are_entras() {
    let t = TestLab::start().await;
    let b = browser(&t);
    // a redirect URI the app did not register: Entra's page, nothing sent anywhere
    let r = b.get(&authorize_url(&t, &[("redirect_uri", "https://evil.example/cb")])).await;
    assert_eq!(r.status().as_u16(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("AADSTS50011: The redirect URI &#39;https://evil.example/cb&#39; specified in the request does not match"),
        "{html}"
    );
    // an unknown app
    let r = b.get(&authorize_url(&t, &[("client_id", "00000000-0000-0000-0000-000000000001")])).await;
    assert!(r.text().await.unwrap().contains("AADSTS700016"));
    // a public client without PKCE (or with plain): sent back as invalid_request
    for extra in [
        vec![("code_challenge", ""), ("code_challenge_method", "")],
        vec![("code_challenge", VERIFIER), ("code_challenge_method", "plain")],
    ] {
        let r = b.get(&authorize_url(&t, &extra)).await;
        let p = location_params(&r, '?');
        assert_eq!(param(&p, "error"), Some("invalid_request"));
        assert!(param(&p, "error_description").unwrap().starts_with("AADSTS9002325"), "{p:?}");
        assert_eq!(param(&p, "state"), Some("st-123"));
    }
    // not a code: implicit flows are not enabled
    let r = b.get(&authorize_url(&t, &[("response_type", "token")])).await;
    assert_eq!(param(&location_params(&r, '?'), "error"), Some("unsupported_response_type"));
    // silent, with no session: login_required, in the fragment when asked so
    let r = b.get(&authorize_url(&t, &[("prompt", "none"), ("response_mode", "fragment")])).await;
    let p = location_params(&r, '#');
    assert_eq!(param(&p, "error"), Some("login_required"));
    assert!(param(&p, "error_description").unwrap().starts_with("AADSTS50058"));

    // login_hint goes straight to the password page; form_post answers with a posting page
    let page = b.get(&authorize_url(&t, &[("login_hint", USER1.0), ("response_mode", "form_post")])).await.text().await.unwrap();
    assert!(page.contains("Enter password") && page.contains(USER1.0), "{page}");
    // a wrong password: Entra's words on the page, and the sign-in log has it as a browser's
    let r = step(&t, &b, &page, &[("step", "password"), ("loginfmt", USER1.0), ("passwd", "Wrong-Pass-1")]).await;
    let html = r.text().await.unwrap();
    assert!(html.contains("Your account or password is incorrect.") && html.contains("AADSTS50126"), "{html}");
    let r = step(&t, &b, &html, &[("step", "password"), ("loginfmt", USER1.0), ("passwd", USER1.1)]).await;
    let html = r.text().await.unwrap();
    assert_eq!(attr(&html, "form", "action"), REDIRECT);
    assert!(!field(&html, "code").is_empty() && html.contains("document.forms[0].submit()"), "{html}");
    assert_eq!(field(&html, "state"), "st-123");
    let admin = t.admin_token().await;
    let (_, log) =
        t.call("GET", "/v1.0/auditLogs/signIns?$top=2&$filter=userPrincipalName%20eq%20'user1@testlab.example'", Some(&admin), None).await;
    assert_eq!(log["value"][0]["clientAppUsed"], "Browser", "{log}");
    assert_eq!(log["value"][1]["status"]["errorCode"], 50126, "{log}");

    // a session now: select_account shows the picker, prompt=login asks again, none answers at once
    let html = b.get(&authorize_url(&t, &[("prompt", "select_account")])).await.text().await.unwrap();
    assert!(html.contains("Pick an account") && html.contains(USER1.0), "{html}");
    let r = step(&t, &b, &html, &[("step", "session")]).await;
    assert!(param(&location_params(&r, '?'), "code").is_some());
    let html = b.get(&authorize_url(&t, &[("prompt", "login")])).await.text().await.unwrap();
    assert!(html.contains("id=\"i0116\""), "{html}");
    let r = b.get(&authorize_url(&t, &[("prompt", "none")])).await;
    assert!(param(&location_params(&r, '?'), "code").is_some());

    // sign-out: the session is over, back to the app's registered address only
    let tn = &t.info().tenant;
    let logout = format!("{}/oauth2/v2.0/logout?post_logout_redirect_uri={}&state=bye", tn.authority, urlencode(REDIRECT));
    let r = b.get(&logout).await;
    assert_eq!(r.headers()["location"], format!("{REDIRECT}?state=bye"));
    let r = b.get(&authorize_url(&t, &[("prompt", "none")])).await;
    assert_eq!(param(&location_params(&r, '?'), "error"), Some("login_required"));
    let elsewhere = format!("{}/oauth2/v2.0/logout?post_logout_redirect_uri={}", tn.authority, urlencode("https://evil.example/"));
    let r = b.get(&elsewhere).await;
    assert_eq!(r.status().as_u16(), 200, "not sent to an address no app registered");
    assert!(r.text().await.unwrap().contains("You signed out of your account"));
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_code_is_pending_slowed_signed_in_on_the_enter_code_page_then_expires() {
    let t = TestLab::start().await;
    let tn = t.info().tenant.clone();
    let start = || async {
        let form = [("client_id", tn.client_id.as_str()), ("scope", "openid profile User.Read")];
        let r = t.http().post(format!("{}/oauth2/v2.0/devicecode", tn.authority)).form(&form).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json::<Value>().await.unwrap()
    };
    let flow = start().await;
    assert_eq!(flow["interval"], 5);
    assert_eq!(flow["expires_in"], 900);
    let uri = flow["verification_uri"].as_str().unwrap().to_string();
    assert!(flow["message"].as_str().unwrap().contains(&uri));
    let poll = |device: String| {
        let (t, tn) = (&t, &tn);
        async move {
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", tn.client_id.as_str()),
                ("device_code", &device),
            ];
            let r = t.http().post(format!("{}/oauth2/v2.0/token", tn.authority)).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let device = flow["device_code"].as_str().unwrap().to_string();
    let (s, body) = poll(device.clone()).await;
    assert_eq!((s, body["error"].as_str(), aadsts(&body)), (400, Some("authorization_pending"), 70016));
    assert_eq!(poll(device.clone()).await.1["error"], "slow_down", "polled at once again");

    // a second client: the "Enter code" page in a browser
    let b = browser(&t);
    let html = b.get(&uri).await.text().await.unwrap();
    assert!(html.contains("Enter code") && html.contains("id=\"otc\""));
    let wrong = b.post(&uri, &[("otc", "ZZZZZZZZZ")]).await.text().await.unwrap();
    assert!(wrong.contains("That code didn&#39;t work."), "{wrong}");
    // typed in lower case, as people do
    let code = flow["user_code"].as_str().unwrap().to_lowercase();
    let html = b.post(&uri, &[("otc", code.as_str())]).await.text().await.unwrap();
    assert!(html.contains("Are you trying to sign in to hybrid-lab automation?"), "{html}");
    let html = step(&t, &b, &html, &[("step", "other")]).await.text().await.unwrap();
    let html = step(&t, &b, &html, &[("step", "username"), ("loginfmt", USER1.0)]).await.text().await.unwrap();
    let html = step(&t, &b, &html, &[("step", "password"), ("loginfmt", USER1.0), ("passwd", USER1.1)]).await.text().await.unwrap();
    assert!(html.contains("You have signed in to the hybrid-lab automation application on your device."), "{html}");
    let (s, body) = poll(device.clone()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(claims(body["id_token"].as_str().unwrap())["preferred_username"].as_str().map(str::to_lowercase).as_deref(), Some(USER1.0));
    assert_eq!(poll(device).await.1["error"], "bad_verification_code", "a device code is good once");

    // cancelled on the page: declined
    let flow = start().await;
    let html = b.post(&uri, &[("otc", flow["user_code"].as_str().unwrap())]).await.text().await.unwrap();
    step(&t, &b, &html, &[("step", "decline")]).await;
    assert_eq!(poll(flow["device_code"].as_str().unwrap().into()).await.1["error"], "authorization_declined");

    // fifteen minutes on the lab clock: expired, and the page refuses the code too
    let flow = start().await;
    assert_eq!(t.lab_call("POST", "/lab/clock", Some(json!({ "advance": "901s" }))).await.0, 200);
    let late = b.post(&uri, &[("otc", flow["user_code"].as_str().unwrap())]).await.text().await.unwrap();
    assert!(late.contains("That code didn&#39;t work."), "{late}");
    let (s, body) = poll(flow["device_code"].as_str().unwrap().into()).await;
    assert_eq!((s, body["error"].as_str(), aadsts(&body)), (400, Some("expired_token"), 70020));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_change_on_the_sign_in_page_is_written_back_before_the_code() {
    let t = TestLab::start_with(|c| c.engine = true).await;
    let helpdesk = t.admin_token().await;
    // an administrator's reset through writeback: User1 must change at next sign-in
    assert_eq!(t.graph_reset(&helpdesk, USER1.0, "Temp-Reset-2026!").await, "succeeded");
    let b = browser(&t);
    let r = sign_in(&t, &b, &authorize_url(&t, &[]), USER1.0, "Temp-Reset-2026!").await;
    let html = r.text().await.unwrap();
    assert!(html.contains("Update your password") && html.contains("id=\"currentPassword\""), "{html}");
    // the confirmation differs: nothing changes
    let r = step(
        &t,
        &b,
        &html,
        &[
            ("step", "change"),
            ("loginfmt", USER1.0),
            ("oldpasswd", "Temp-Reset-2026!"),
            ("newpasswd", "Own-Choice-Pass-9"),
            ("confirmnewpasswd", "Own-Choice-Pass-8"),
        ],
    )
    .await;
    let html = r.text().await.unwrap();
    assert!(html.contains("The passwords don&#39;t match."), "{html}");
    assert!(!t.ad_accepts("TESTLAB\\User1", "Own-Choice-Pass-9").await);
    let r = step(
        &t,
        &b,
        &html,
        &[
            ("step", "change"),
            ("loginfmt", USER1.0),
            ("oldpasswd", "Temp-Reset-2026!"),
            ("newpasswd", "Own-Choice-Pass-9"),
            ("confirmnewpasswd", "Own-Choice-Pass-9"),
        ],
    )
    .await;
    let code = param(&location_params(&r, '?'), "code").expect("signed in after the change").to_string();
    assert_eq!(redeem(&t, &code, VERIFIER).await.0, 200);
    assert!(t.ad_accepts("TESTLAB\\User1", "Own-Choice-Pass-9").await, "written back to AD");
    assert!(t.cloud_accepts(USER1.0, "Own-Choice-Pass-9").await);
    // "Forgot my password" leads to SSPR, which comes back to this request
    let html = b.get(&authorize_url(&t, &[("prompt", "login"), ("login_hint", USER1.0)])).await.text().await.unwrap();
    let link = attr(&html, "#idA_PWD_ForgotPassword", "href");
    assert!(link.starts_with("/portal/sspr?"), "{link}");
    let q: Vec<(String, String)> = serde_urlencoded::from_str(link.split_once('?').unwrap().1).unwrap();
    assert!(param(&q, "ru").unwrap().contains("/oauth2/v2.0/authorize?"), "{q:?}");
    let sspr = b.get(&format!("{}{link}", b.origin)).await.text().await.unwrap();
    assert_eq!(field(&sspr, "user"), USER1.0, "the account is carried over");
    assert_eq!(field(&sspr, "ru"), param(&q, "ru").unwrap(), "and the way back");
    // an address elsewhere is never linked to
    let elsewhere = b.get(&format!("{}/portal/sspr?ru=//evil.example/", b.origin)).await.text().await.unwrap();
    assert_eq!(field(&elsewhere, "ru"), "/portal/signin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_the_discovery_document_names_answers() {
    let t = TestLab::start().await;
    let tn = t.info().tenant.clone();
    let meta: Value =
        t.http().get(format!("{}/v2.0/.well-known/openid-configuration", tn.authority)).send().await.unwrap().json().await.unwrap();
    let http = t.http_no_redirects();
    let user = t.user_token(USER1.0, USER1.1).await;
    let endpoints: Vec<(&str, String)> = meta
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| (k.ends_with("_endpoint") || k.as_str() == "jwks_uri") && v.is_string())
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(endpoints.len(), 6, "{endpoints:?}");
    for (name, url) in endpoints {
        // each as a client calls it: a token or device request is a POST, the rest GETs
        let r = match name {
            "token_endpoint" => http.post(&url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", tn.client_id.as_str()),
                ("client_secret", tn.client_secret.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
            ]),
            "device_authorization_endpoint" => http.post(&url).form(&[("client_id", tn.client_id.as_str()), ("scope", "openid")]),
            "userinfo_endpoint" => http.get(&url).bearer_auth(&user),
            "authorization_endpoint" => http.get(format!("{url}?{}", authorize_url(&t, &[]).split_once('?').unwrap().1)),
            _ => http.get(&url),
        };
        let r = r.send().await.unwrap();
        assert!(r.status().is_success() || r.status().is_redirection(), "{name} {url}: {}", r.status());
    }
}
