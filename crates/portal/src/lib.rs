//! The lab's pages for people: the "Can't access your account?" SSPR portal, a sign-in page
//! with its interruptions, the lab outbox, and the trainer's dashboard (the lab clock, the
//! writeback engine, its event log, live). Rendered on the server (askama, no JavaScript
//! toolchain), served on the tenant's own listeners under `/portal`.
//!
//! The pages are clients of the same HTTP API scenarios use — every action is a request to
//! the tenant (`/lab/sspr/flows`, the token endpoint, `/lab/engine/control`, …), never a call
//! into its state — so what a learner clicks is what a scenario step does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

mod account;
mod admin;
mod cloudsync;
mod connect;
mod dcs;
mod delegation;
mod evidence;
pub mod exercise;
pub mod onprem;
mod pages;
pub mod sequence;
mod session;
mod sync_manager;

use pages::*;

/// Where the pages find the tenant, and who the dashboard acts as.
#[derive(Clone, Debug)]
pub struct Config {
    /// The tenant's API, as the pages call it (the lab's HTTPS listener).
    pub api: String,
    /// The CA (PEM) the API's certificate chains to.
    pub api_ca_pem: Vec<u8>,
    pub tenant_id: String,
    /// The lab's app registration, which the sign-in page signs users in through.
    pub client_id: String,
    pub client_secret: String,
    /// The AD DS as its administrator reaches it (the dashboard's health and user views).
    pub adds: Option<AddsAccess>,
    /// The program running the lab restarts it on `POST /lab/reset` (the dashboard offers it).
    pub resettable: bool,
}

/// LDAPS to the AD DS as an administrator, like ADUC or ldapsearch would.
#[derive(Clone, Debug)]
pub struct AddsAccess {
    pub ldaps: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub base_dn: String,
    /// The CA (bundle) its certificate chains to.
    pub ca_pem: Vec<u8>,
    /// The pages' own recent connections to it (`Default::default()`).
    pub own: onprem::OwnConnections,
}

/// An SSPR flow as the pages walk it (the tenant keeps the flow itself).
#[derive(Clone, Debug)]
struct Flow {
    user: String,
    /// `(type, masked display)` of each method the tenant offered.
    methods: Vec<(String, String)>,
    gates_required: u64,
    gates_passed: u64,
    used: Vec<String>,
    /// The method a code was last sent by (the page then asks for the code).
    code_sent: Option<String>,
    unlock_offered: bool,
    /// Synced from AD: the new password is judged by AD's policy.
    synced: bool,
    /// The sign-in to go back to once done.
    back: String,
}

pub struct Portal {
    cfg: Config,
    /// Made on the first page that needs it: a lab in a test may never serve one, and the
    /// client (its TLS configuration) is a good part of a lab's start.
    http: std::sync::OnceLock<reqwest::Client>,
    flows: Mutex<HashMap<String, Flow>>,
    /// Signed-in administrators (the admin center) and users (their own pages).
    admins: session::Sessions,
    users: session::Sessions,
    /// Live dashboards now (see [`MAX_STREAMS`]).
    streams: std::sync::atomic::AtomicUsize,
    /// The exercise the dashboard's checklist follows, if the lab runs one.
    exercise: Mutex<Option<exercise::Active>>,
    /// Connect's configuration wizard, per administrator session.
    wizards: Mutex<HashMap<String, connect::Wizard>>,
}

type Shared = Arc<Portal>;

impl Portal {
    pub fn new(cfg: Config) -> Arc<Portal> {
        // Cookies are a host's, whatever its port: two labs on one machine, open in one browser,
        // must not overwrite each other's sessions, so each lab's names carry its port.
        let port = reqwest::Url::parse(&cfg.api).ok().and_then(|u| u.port_or_known_default()).unwrap_or(443);
        Arc::new(Portal {
            cfg,
            http: Default::default(),
            flows: Mutex::default(),
            admins: session::Sessions::new(format!("hybrid_lab_admin_{port}")),
            users: session::Sessions::new(format!("hybrid_lab_user_{port}")),
            streams: Default::default(),
            exercise: Mutex::default(),
            wizards: Mutex::default(),
        })
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            // the lab's CA only: the pages talk to this lab's API and nothing else
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls::pki_types::CertificateDer::pem_slice_iter(&self.cfg.api_ca_pem).flatten() {
                let _ = roots.add(c);
            }
            // (`localhost` is the loopback address, RFC 6761: no resolver call per connection)
            let b = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
            let b = match tls_with(roots) {
                Ok(tls) => b.tls_backend_preconfigured(tls),
                Err(_) => b,
            };
            b.build().unwrap_or_default()
        })
    }

    fn flows(&self) -> std::sync::MutexGuard<'_, HashMap<String, Flow>> {
        self.flows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One request to the tenant's API: the status and the JSON body (Null when none).
    /// A `GET` of the lab's API as a page shows it: the body, and the API's error message when
    /// it answered anything but 200.
    async fn read_api(&self, path: &str, token: &str) -> (Value, Option<String>) {
        let (status, v) = self.api(reqwest::Method::GET, path, Some(token), None).await;
        let failed = (status != 200).then(|| api_error(&v).1);
        (v, failed)
    }

    async fn api(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut rq = self.http().request(method, format!("{}{path}", self.cfg.api));
        if let Some(t) = token {
            rq = rq.bearer_auth(t);
        }
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        match rq.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (502, json!({ "error": { "code": "Unreachable", "message": e.to_string() } })),
        }
    }

    /// The resource-owner password grant against the lab's app, as a sign-in page does.
    async fn token(&self, user: &str, password: &str) -> (u16, Value) {
        let form = [
            ("grant_type", "password"),
            ("client_id", self.cfg.client_id.as_str()),
            ("client_secret", self.cfg.client_secret.as_str()),
            ("username", user),
            ("password", password),
            ("scope", "https://graph.microsoft.com/.default"),
        ];
        let url = format!("{}/{}/oauth2/v2.0/token", self.cfg.api, self.cfg.tenant_id);
        match self.http().post(url).form(&form).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (502, json!({ "error": "unreachable", "error_description": e.to_string() })),
        }
    }
}

impl Portal {
    /// The administrator's token, signed in again first when the tenant no longer takes it
    /// (tokens live on the lab clock: a day's advance ends them).
    async fn fresh_admin_token(&self, headers: &axum::http::HeaderMap, token: String) -> String {
        let (status, _) = self.api(reqwest::Method::GET, "/v1.0/me", Some(&token), None).await;
        if status != 401 {
            return token;
        }
        let Some((user, password)) = self.admins.renewal(headers) else { return token };
        let (status, body) = self.token(&user, &password).await;
        match body["access_token"].as_str().filter(|_| status == 200) {
            Some(t) => {
                self.admins.renew(headers, t);
                t.to_string()
            }
            None => token,
        }
    }
}

/// The routes under `/portal`.
pub fn router(p: Shared) -> Router {
    Router::new()
        .route("/portal", get(index))
        .route("/portal/sspr", get(sspr_user).post(sspr_start))
        .route("/portal/sspr/{flow}", get(sspr_step))
        .route("/portal/sspr/{flow}/code", post(sspr_code))
        .route("/portal/sspr/{flow}/verify", post(sspr_verify))
        .route("/portal/sspr/{flow}/reset", post(sspr_reset))
        .route("/portal/sspr/{flow}/unlock", post(sspr_unlock))
        .route("/portal/outbox", get(outbox))
        .route("/portal/signin", get(signin_page).post(signin))
        .route("/portal/signin/callback", get(signin_callback))
        .route("/portal/signin/change", post(signin_change))
        .route("/portal/lab", get(dashboard))
        .route("/portal/lab/clock", post(dashboard_clock))
        .route("/portal/lab/engine", post(dashboard_engine))
        .route("/portal/lab/pta", post(dashboard_agent))
        .route("/portal/lab/adds-fault", post(dashboard_fault))
        .route("/portal/lab/right", post(dashboard_right))
        .route("/portal/lab/reset", post(dashboard_reset))
        .route("/portal/lab/reset/now", post(dashboard_reset_now))
        .route("/portal/lab/security", get(security_page).post(security_add))
        .route("/portal/lab/security/remove", post(security_remove))
        .route("/portal/lab/stream", get(dashboard_stream))
        .route("/portal/lab/exercise", get(exercise_json))
        .route("/portal/lab/exercise/answer", post(exercise_answer))
        .route("/portal/lab/exercise/hint", post(exercise_hint))
        // an unknown page under /portal is a page too, not the tenant's Graph error
        .route("/portal/{*rest}", axum::routing::any(not_found))
        .merge(admin::routes())
        .merge(cloudsync::routes())
        .merge(connect::routes())
        .merge(sync_manager::routes())
        .merge(dcs::routes())
        .merge(account::routes())
        .with_state(p)
}

/// A domain's DNS name as a form may give it (it goes into an API path: letters, digits,
/// hyphens and dots only).
pub(crate) fn dns_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') && !s.contains("..")
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("page: {e}")).into_response(),
    }
}

fn render_status(status: StatusCode, t: &impl Template) -> Response {
    let mut r = render(t);
    *r.status_mut() = status;
    r
}

/// The tenant's error (`{"error":{"code","message"}}`) as code and message.
fn api_error(body: &Value) -> (String, String) {
    let e = &body["error"];
    (e["code"].as_str().unwrap_or("Error").to_string(), e["message"].as_str().unwrap_or("Something went wrong.").to_string())
}

async fn index() -> Response {
    render(&IndexPage)
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    path: String,
}

async fn not_found(uri: axum::http::Uri) -> Response {
    render_status(StatusCode::NOT_FOUND, &NotFoundPage { path: uri.path().to_string() })
}

// ----- SSPR: "Can't access your account?" -----

#[derive(Deserialize)]
struct UserForm {
    user: String,
    ru: Option<String>,
}

#[derive(Deserialize)]
struct SsprQuery {
    user: Option<String>,
    ru: Option<String>,
}

/// A return address the page may link to: one of the lab's own paths (`/…`, not `//host`),
/// so "Can't access your account?" is never a way to send a user elsewhere.
fn same_site(ru: Option<&str>) -> String {
    match ru {
        Some(r)
            if r.starts_with('/')
                && !r.starts_with("//")
                && !r.starts_with("/\\")
                && r.len() <= 4096
                && !r.chars().any(char::is_control) =>
        {
            r.to_string()
        }
        _ => "/portal/signin".into(),
    }
}

async fn sspr_user(axum::extract::Query(q): axum::extract::Query<SsprQuery>) -> Response {
    render(&SsprUserPage { error: None, user: q.user.unwrap_or_default(), back: same_site(q.ru.as_deref()) })
}

async fn sspr_start(State(p): State<Shared>, Form(f): Form<UserForm>) -> Response {
    let user = f.user.trim().to_string();
    let back = same_site(f.ru.as_deref());
    if user.is_empty() {
        let page = SsprUserPage { error: Some("Enter your user ID (your email or user name).".into()), user, back };
        return render_status(StatusCode::BAD_REQUEST, &page);
    }
    let (status, body) = p.api(reqwest::Method::POST, "/lab/sspr/flows", None, Some(json!({ "userPrincipalName": user }))).await;
    if status != 201 {
        let (code, message) = api_error(&body);
        return sspr_error(status, &code, &message, None);
    }
    let id = body["id"].as_str().unwrap_or_default().to_string();
    let methods = body["methods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["type"].as_str().unwrap_or_default().to_string(), m["display"].as_str().unwrap_or_default().to_string()))
        .collect();
    let flow = Flow {
        user,
        methods,
        gates_required: body["gatesRequired"].as_u64().unwrap_or(1),
        gates_passed: 0,
        used: vec![],
        code_sent: None,
        unlock_offered: body["unlockOffered"].as_bool().unwrap_or(false),
        synced: body["onPremisesSyncEnabled"].as_bool().unwrap_or(false),
        back,
    };
    p.flows().insert(id.clone(), flow);
    Redirect::to(&format!("/portal/sspr/{id}")).into_response()
}

/// The SSPR error page: the code, the message, and a support code that ties it to the flow.
fn sspr_error(status: u16, code: &str, message: &str, flow: Option<&str>) -> Response {
    // Entra's error page always has a support code; before a flow exists, a fresh one
    let support_code = flow.map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let page = SsprErrorPage { code: code.to_string(), message: message.to_string(), support_code };
    render_status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), &page)
}

fn unknown_flow() -> Response {
    sspr_error(404, "FlowNotFound", "This reset session has ended. Start again from \"Can't access your account?\".", None)
}

async fn sspr_step(State(p): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(f) = p.flows().get(&id).cloned() else { return unknown_flow() };
    flow_page(&id, &f, None)
}

fn flow_page(id: &str, f: &Flow, error: Option<String>) -> Response {
    if f.gates_passed >= f.gates_required {
        return render(&SsprPasswordPage {
            flow: id.to_string(),
            user: f.user.clone(),
            unlock_offered: f.unlock_offered,
            synced: f.synced,
            error,
        });
    }
    let methods =
        f.methods.iter().filter(|(kind, _)| !f.used.contains(kind)).map(|(kind, display)| MethodView::new(kind, display)).collect();
    let page = SsprVerifyPage {
        flow: id.to_string(),
        user: f.user.clone(),
        step: f.gates_passed + 1,
        steps: f.gates_required,
        methods,
        code_sent: f.code_sent.as_deref().map(|k| MethodView::new(k, "")),
        error,
    };
    render(&page)
}

#[derive(Deserialize)]
struct MethodForm {
    method: String,
}

async fn sspr_code(State(p): State<Shared>, Path(id): Path<String>, Form(f): Form<MethodForm>) -> Response {
    if !p.flows().contains_key(&id) {
        return unknown_flow();
    }
    let (status, body) =
        p.api(reqwest::Method::POST, &format!("/lab/sspr/flows/{id}/codes"), None, Some(json!({ "method": f.method }))).await;
    if status != 202 {
        let (code, message) = api_error(&body);
        return sspr_error(status, &code, &message, Some(&id));
    }
    if let Some(flow) = p.flows().get_mut(&id) {
        flow.code_sent = Some(f.method);
    }
    Redirect::to(&format!("/portal/sspr/{id}")).into_response()
}

#[derive(Deserialize)]
struct CodeForm {
    method: String,
    code: String,
}

async fn sspr_verify(State(p): State<Shared>, Path(id): Path<String>, Form(f): Form<CodeForm>) -> Response {
    let Some(flow) = p.flows().get(&id).cloned() else { return unknown_flow() };
    let body = json!({ "method": f.method, "code": f.code.trim() });
    let (status, body) = p.api(reqwest::Method::POST, &format!("/lab/sspr/flows/{id}/verify"), None, Some(body)).await;
    if status != 200 {
        let (code, message) = api_error(&body);
        // a wrong code: ask again (the tenant counts it); anything else ends the flow
        if status == 400 {
            return flow_page(&id, &flow, Some(message));
        }
        return sspr_error(status, &code, &message, Some(&id));
    }
    let mut flows = p.flows();
    let Some(flow) = flows.get_mut(&id) else { return unknown_flow() };
    flow.gates_passed = body["gatesPassed"].as_u64().unwrap_or(flow.gates_passed + 1);
    flow.used.push(f.method);
    flow.code_sent = None;
    Redirect::to(&format!("/portal/sspr/{id}")).into_response()
}

#[derive(Deserialize)]
struct PasswordForm {
    new_password: String,
    confirm_password: String,
}

async fn sspr_reset(State(p): State<Shared>, Path(id): Path<String>, Form(f): Form<PasswordForm>) -> Response {
    let Some(flow) = p.flows().get(&id).cloned() else { return unknown_flow() };
    if f.new_password != f.confirm_password {
        // never echo a password back into the page
        return flow_page(&id, &flow, Some("The passwords don't match. Enter the same password twice.".into()));
    }
    let body = json!({ "newPassword": f.new_password });
    let (status, body) = p.api(reqwest::Method::POST, &format!("/lab/sspr/flows/{id}/reset"), None, Some(body)).await;
    if status != 200 {
        let (code, message) = api_error(&body);
        // the cloud's own rules refused it: choose another (the portal stays on the page)
        if status == 400 && code != "OnPremisesPolicyViolation" {
            return flow_page(&id, &flow, Some(message));
        }
        return sspr_error(status, &code, &message, Some(&id));
    }
    p.flows().remove(&id);
    render(&SsprDonePage { user: flow.user, unlocked_only: false, back: flow.back })
}

async fn sspr_unlock(State(p): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(flow) = p.flows().get(&id).cloned() else { return unknown_flow() };
    let (status, body) = p.api(reqwest::Method::POST, &format!("/lab/sspr/flows/{id}/unlock"), None, Some(json!({}))).await;
    if status != 200 {
        let (code, message) = api_error(&body);
        return sspr_error(status, &code, &message, Some(&id));
    }
    p.flows().remove(&id);
    render(&SsprDonePage { user: flow.user, unlocked_only: true, back: flow.back })
}

/// The outbox holds every user's codes: the lab administrator's, like the dashboard.
async fn outbox(State(p): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    let token = admin::signed_in!(p, headers, "/portal/outbox", &[admin::GLOBAL_ADMINISTRATOR]).1;
    let (_, body) = p.api(reqwest::Method::GET, "/lab/outbox", Some(&token), None).await;
    let messages = body["value"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .map(|m| OutboxRow {
            sent_at: m["sentAt"].as_str().unwrap_or_default().to_string(),
            channel: m["channel"].as_str().unwrap_or_default().to_string(),
            to: m["to"].as_str().unwrap_or_default().to_string(),
            subject: m["subject"].as_str().unwrap_or_default().to_string(),
            body: m["body"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    render(&OutboxPage { messages })
}

// ----- sign-in, and what interrupts it -----

#[derive(Deserialize)]
struct SignInForm {
    user: String,
    password: String,
}

/// The sign-in page is the tenant's: `/authorize` with the authorization code flow, as a web
/// app signs its users in (PKCE, a state, `prompt=login`), back at `/portal/signin/callback`.
/// `?form` shows the lab's one-page form instead (the password grant, for scripts).
async fn signin_page(
    State(p): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    use base64::Engine;
    if q.contains_key("form") {
        return render(&SignInPage { user: String::new(), error: None });
    }
    let state = uuid::Uuid::new_v4().simple().to_string();
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let query = [
        ("client_id", p.cfg.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", &callback_uri(&p, &headers)),
        ("scope", "openid profile https://graph.microsoft.com/.default"),
        ("state", &state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("prompt", "login"),
    ];
    let query: String = query.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&");
    let cookie = format!("{SIGNIN_COOKIE}={state}.{verifier}; Path=/portal/signin; HttpOnly; Secure; SameSite=Lax; Max-Age=900");
    ([(axum::http::header::SET_COOKIE, cookie)], Redirect::to(&format!("/{}/oauth2/v2.0/authorize?{query}", p.cfg.tenant_id)))
        .into_response()
}

/// The sign-in in progress: its state and PKCE verifier, kept by the browser for the callback.
const SIGNIN_COOKIE: &str = "hybrid_lab_signin";

/// Where the tenant sends the browser back: this page's own origin (the lab registers the
/// callback under each of its names).
fn callback_uri(p: &Portal, headers: &axum::http::HeaderMap) -> String {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    // the HTTPS listener's port is the API's; any other is the plain HTTP listener
    let https_port = p.cfg.api.rsplit_once(':').map(|(_, port)| port).unwrap_or("443");
    let scheme = if host.rsplit_once(':').map_or("443", |(_, port)| port) == https_port { "https" } else { "http" };
    format!("{scheme}://{host}/portal/signin/callback")
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// `GET /portal/signin/callback?code&state`: the code redeemed (the app's secret and the PKCE
/// verifier), the user signed in to the pages; or the tenant's error shown.
async fn signin_callback(
    State(p): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    use base64::Engine;
    let kept = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&format!("{SIGNIN_COOKIE}=")).map(str::to_string));
    let fail = |code: &str, message: &str| {
        render_status(
            StatusCode::BAD_REQUEST,
            &SignInPage { user: String::new(), error: Some(SignInError { code: code.into(), message: message.into() }) },
        )
    };
    let Some((state, verifier)) = kept.as_deref().and_then(|k| k.split_once('.')) else {
        return fail("", "This sign-in has no sign-in in progress in this browser: start again.");
    };
    if q.get("state").map(String::as_str) != Some(state) {
        return fail("", "The sign-in's state does not match this browser's: start again.");
    }
    if let Some(e) = q.get("error_description") {
        let first = e.split(" Trace ID:").next().unwrap_or_default();
        let code = first.split(':').next().unwrap_or_default().trim_start_matches("AADSTS");
        return fail(code, first);
    }
    let Some(code) = q.get("code") else { return fail("", "The tenant sent neither a code nor an error.") };
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", p.cfg.client_id.as_str()),
        ("client_secret", p.cfg.client_secret.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", &callback_uri(&p, &headers)),
        ("code_verifier", verifier),
    ];
    let url = format!("{}/{}/oauth2/v2.0/token", p.cfg.api, p.cfg.tenant_id);
    let body: Value = match p.http().post(url).form(&form).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(e) => return fail("", &format!("The tenant could not be reached: {e}")),
    };
    let (Some(access), Some(id_token)) = (body["access_token"].as_str(), body["id_token"].as_str()) else {
        let first = body["error_description"].as_str().unwrap_or("No token.").lines().next().unwrap_or_default().to_string();
        return fail(first.split(':').next().unwrap_or_default().trim_start_matches("AADSTS"), &first);
    };
    let claims: Value = id_token
        .split('.')
        .nth(1)
        .and_then(|c| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice(&c).ok())
        .unwrap_or_default();
    let user = claims["preferred_username"].as_str().unwrap_or_default().to_string();
    let session = p.users.start(&user, access);
    let done = format!("{SIGNIN_COOKIE}=; Path=/portal/signin; HttpOnly; Secure; SameSite=Lax; Max-Age=0");
    let mut r = render(&SignedInPage { user });
    r.headers_mut().append(axum::http::header::SET_COOKIE, session.parse().expect("a cookie"));
    r.headers_mut().append(axum::http::header::SET_COOKIE, done.parse().expect("a cookie"));
    r
}

async fn signin(State(p): State<Shared>, Form(f): Form<SignInForm>) -> Response {
    let (status, body) = p.token(f.user.trim(), &f.password).await;
    if status == 200 {
        let user = f.user.trim().to_string();
        let cookie = p.users.start(&user, body["access_token"].as_str().unwrap_or_default());
        return ([(axum::http::header::SET_COOKIE, cookie)], render(&SignedInPage { user })).into_response();
    }
    let description = body["error_description"].as_str().unwrap_or_default();
    // "AADSTS50126: Error validating credentials …\r\nTrace ID: …": the first line is the message
    let first = description.lines().next().unwrap_or_default().to_string();
    let code = first.split(':').next().unwrap_or_default().trim_start_matches("AADSTS").to_string();
    match code.as_str() {
        // the password has expired or must be changed; the user-risk policy's secure change
        // …and an on-premises password expired (PTA): changed here only through writeback
        "50055" | "50142" | "50144" if !first.contains("doesn't allow you to update your password on this site") => {
            let risky = code == "50142";
            render(&ChangeInterruptPage { user: f.user.trim().to_string(), risky, error: None })
        }
        _ => render_status(
            StatusCode::UNAUTHORIZED,
            &SignInPage { user: f.user.trim().to_string(), error: Some(SignInError { code, message: first }) },
        ),
    }
}

#[derive(Deserialize)]
struct ChangeForm {
    user: String,
    current_password: String,
    new_password: String,
    confirm_password: String,
    risky: Option<String>,
}

async fn signin_change(State(p): State<Shared>, Form(f): Form<ChangeForm>) -> Response {
    let user = f.user.trim().to_string();
    let risky = f.risky.is_some();
    if f.new_password != f.confirm_password {
        let error = Some("The passwords don't match. Enter the same password twice.".to_string());
        return render_status(StatusCode::BAD_REQUEST, &ChangeInterruptPage { user, risky, error });
    }
    let body = json!({ "userPrincipalName": user, "currentPassword": f.current_password, "newPassword": f.new_password });
    let (status, body) = p.api(reqwest::Method::POST, "/lab/signIn/changePassword", None, Some(body)).await;
    if !(200..300).contains(&status) {
        let (_, message) = api_error(&body);
        return render_status(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &ChangeInterruptPage { user, risky, error: Some(message) },
        );
    }
    render(&SignedInPage { user })
}

// ----- the dashboard -----

/// What the dashboard shows, read from the API.
/// The lab's switches and logs are the lab administrator's: the dashboard reads them with the
/// signed-in administrator's token, as any client of `/lab/` must.
async fn dashboard_state(p: &Portal, token: &str, q: &DashboardQuery) -> DashboardPage {
    let user = q.user.as_deref();
    let t = Some(token);
    let (_, clock) = p.api(reqwest::Method::GET, "/lab/clock", t, None).await;
    let (engine_status, engine) = p.api(reqwest::Method::GET, "/lab/engine", t, None).await;
    let (_, outbox) = p.api(reqwest::Method::GET, "/lab/outbox", t, None).await;
    let (_, events) = p.api(reqwest::Method::GET, "/lab/engine/events", t, None).await;
    let (_, trace) = p.api(reqwest::Method::GET, "/lab/engine/trace", t, None).await;
    let last = sequence::last_operation(trace["value"].as_array().map(Vec::as_slice).unwrap_or_default());
    let last_operation = if last.is_empty() { String::new() } else { sequence::svg(&last) };
    let filter = evidence::EventFilter::parse(
        q.id.as_deref().unwrap_or_default(),
        q.level.as_deref().unwrap_or_default(),
        q.tracking.as_deref().unwrap_or_default(),
        q.since.as_deref().unwrap_or_default(),
        q.heartbeats.is_some(),
    );
    let (filter, filter_error) = match filter {
        Ok(f) => (f, None),
        Err(e) => (evidence::EventFilter { heartbeats: q.heartbeats.is_some(), ..Default::default() }, Some(e)),
    };
    let began = p.exercise().as_ref().map(|a| a.events_before);
    let all_events = events["value"].as_array().map(Vec::as_slice).unwrap_or_default();
    let (events, events_matched) = evidence::events(all_events, &filter, began);
    let (fault_status, fault) = p.api(reqwest::Method::GET, "/lab/adds/fault", t, None).await;
    let (_, rights) = p.api(reqwest::Method::GET, "/lab/adds/rights", t, None).await;
    let (_, ops) = p.api(reqwest::Method::GET, "/lab/adds/operations", t, None).await;
    let adds = onprem::health(p.cfg.adds.as_ref()).await;
    let own_reads = q.reads.as_deref() == Some("show");
    let (operations, own_hidden) = evidence::operations(
        ops["value"].as_array().map(Vec::as_slice).unwrap_or_default(),
        |client| p.cfg.adds.as_ref().is_some_and(|a| a.own.contains(client)),
        own_reads,
    );
    let user = user.map(str::trim).filter(|u| !u.is_empty()).unwrap_or("User1").to_string();
    let user_view = onprem::user(p.cfg.adds.as_ref(), &user).await;
    DashboardPage {
        tenant_id: p.cfg.tenant_id.clone(),
        adds,
        fault: (fault_status == 200).then(|| FaultView {
            state: fault["state"].as_str().unwrap_or_default().to_string(),
            policy_hints: fault["policyHints"].as_bool().unwrap_or(true),
        }),
        rights: rights["rights"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let name = r["right"].as_str().unwrap_or_default().to_string();
                let id = name.to_ascii_lowercase().replace(' ', "-");
                (name, r["granted"].as_bool().unwrap_or(false), id)
            })
            .collect(),
        operations,
        own_hidden,
        user,
        user_view,
        now: clock["now"].as_str().unwrap_or_default().to_string(),
        engine: if engine_status == 200 {
            let (client_up, status) = admin::writeback_client(p, token).await;
            Some(EngineView { client_up, client_status: status.to_string(), ..EngineView::from(&engine) })
        } else {
            None
        },
        events,
        events_matched,
        filter: FilterView {
            ids: q.id.clone().unwrap_or_default(),
            level: q.level.clone().unwrap_or_default(),
            tracking: q.tracking.clone().unwrap_or_default(),
            since_exercise: filter.since_exercise,
            heartbeats: filter.heartbeats,
            own_reads,
            narrows: filter.narrows(),
        },
        outbox_count: outbox["value"].as_array().map(Vec::len).unwrap_or(0),
        last_operation,
        exercise: p.exercise_view(token).await,
        resettable: p.cfg.resettable,
        pta: pta_view(p, token).await,
        cloud_sync_trace: cloud_sync_trace(p, token).await,
        error: filter_error,
    }
}

/// Cloud Sync's agent trace, newest first: None when the lab runs no provisioning agent.
async fn cloud_sync_trace(p: &Portal, token: &str) -> Option<Vec<(String, String, String, String)>> {
    let (status, answer) = p.api(reqwest::Method::GET, "/lab/cloudsync/agent-trace", Some(token), None).await;
    if status != 200 {
        return None;
    }
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let lines = answer["value"].as_array().map(Vec::as_slice).unwrap_or_default();
    Some(
        lines.iter().rev().take(AGENT_TRACE_SHOWN).map(|l| (s(&l["time"]), s(&l["level"]), s(&l["component"]), s(&l["message"]))).collect(),
    )
}

/// How many of the agents' trace lines the dashboard shows.
const AGENT_TRACE_SHOWN: usize = 20;

/// The pass-through authentication card: None when the lab has no agents and PTA is off.
async fn pta_view(p: &Portal, token: &str) -> Option<pages::PtaView> {
    let (status, answer) = p.api(reqwest::Method::GET, "/lab/engine/pta", Some(token), None).await;
    if status != 200 {
        return None;
    }
    let (_, feature) = p.api(reqwest::Method::GET, "/lab/pta", Some(token), None).await;
    let enabled = feature["enabled"].as_bool().unwrap_or(false);
    let list = answer["agents"].as_array().cloned().unwrap_or_default();
    if list.is_empty() && !enabled {
        return None;
    }
    let agents = list
        .iter()
        .map(|a| {
            let f = &a["faults"];
            let mut faults = vec![];
            if f["wrongKey"] == true {
                faults.push("wrong key".to_string());
            }
            if f["directoryUnreachable"] == true {
                faults.push("no DC".to_string());
            }
            if let Some(ms) = f["delayMs"].as_u64().filter(|ms| *ms > 0) {
                faults.push(format!("delay {ms} ms"));
            }
            let c = &a["counters"];
            pages::AgentView {
                machine: a["machineName"].as_str().unwrap_or_default().to_string(),
                connected: a["connected"].as_bool().unwrap_or(false),
                stopped: f["stopped"].as_bool().unwrap_or(false),
                wrong_key: f["wrongKey"].as_bool().unwrap_or(false),
                no_dc: f["directoryUnreachable"].as_bool().unwrap_or(false),
                delay_ms: f["delayMs"].as_u64().unwrap_or(0),
                authentications: c["authentications"].as_u64().unwrap_or(0),
                failed: c["failed"].as_u64().unwrap_or(0),
                errors: c["errors"].as_u64().unwrap_or(0),
                faults: faults.join(", "),
            }
        })
        .collect();
    let lines = answer["trace"].as_array().map(Vec::as_slice).unwrap_or_default();
    let trace = lines
        .iter()
        .rev()
        .take(AGENT_TRACE_SHOWN)
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            pages::AgentTraceRow { time: s("time"), agent: s("agent"), level: s("level"), message: s("message") }
        })
        .collect();
    Some(pages::PtaView { enabled, agents, trace })
}

/// The dashboard's query: the user shown, and the event and operation filters (kept in
/// the address, so a live reload keeps them).
#[derive(Deserialize, Default)]
struct DashboardQuery {
    user: Option<String>,
    /// Event IDs, separated by commas or spaces.
    id: Option<String>,
    level: Option<String>,
    tracking: Option<String>,
    /// `exercise`: only what was logged since the exercise began.
    since: Option<String>,
    /// Present: heartbeats too.
    heartbeats: Option<String>,
    /// `show`: the lab pages' own LDAP reads too.
    reads: Option<String>,
}

/// The signed-in administrator's token, or the admin sign-in that comes back to the dashboard.
macro_rules! lab_admin {
    ($p:expr, $headers:expr) => {
        admin::signed_in!($p, $headers, "/portal/lab", &[admin::GLOBAL_ADMINISTRATOR]).1
    };
}

async fn dashboard(
    State(p): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<DashboardQuery>,
) -> Response {
    let token = lab_admin!(p, headers);
    render(&dashboard_state(&p, &token, &q).await)
}

/// `GET /portal/lab/exercise`: the running exercise's checklist, looked at now.
async fn exercise_json(State(p): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    let token = lab_admin!(p, headers);
    match p.exercise_view(&token).await {
        Some(v) => axum::Json(exercise::view_json(Some(v))).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(exercise::view_json(None))).into_response(),
    }
}

#[derive(Deserialize)]
struct AnswerForm {
    task: usize,
    answer: String,
}

/// The trainee's answer to a task's question; the dashboard then says whether it is right.
#[derive(Deserialize)]
struct HintForm {
    task: usize,
}

/// "Show hint n": the task's next hint, shown from now on (a live reload keeps it open).
async fn exercise_hint(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<HintForm>) -> Response {
    let _ = lab_admin!(p, headers);
    p.reveal_hint(f.task);
    Redirect::to(&format!("/portal/lab#task-{}", f.task + 1)).into_response()
}

async fn exercise_answer(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<AnswerForm>) -> Response {
    let _ = lab_admin!(p, headers);
    p.answer(f.task, f.answer.trim());
    Redirect::to("/portal/lab#exercise").into_response()
}

#[derive(Deserialize)]
struct FaultForm {
    state: String,
    policy_hints: Option<String>,
}

async fn dashboard_fault(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<FaultForm>) -> Response {
    let token = lab_admin!(p, headers);
    let body = json!({ "state": f.state, "policyHints": f.policy_hints.is_some() });
    let (status, answer) = p.api(reqwest::Method::POST, "/lab/adds/fault", Some(&token), Some(body)).await;
    dashboard_after(&p, &token, status, &answer).await
}

#[derive(Deserialize)]
struct RightForm {
    right: String,
    action: String,
}

async fn dashboard_right(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<RightForm>) -> Response {
    let token = lab_admin!(p, headers);
    let body = json!({ "action": f.action, "right": f.right });
    let (status, answer) = p.api(reqwest::Method::POST, "/lab/adds/rights", Some(&token), Some(body)).await;
    dashboard_after(&p, &token, status, &answer).await
}

/// The trainer's reset: the lab back to its start, its CA, ports and URLs kept. The page that
/// answers comes back to the dashboard once the lab is up again (sessions do not survive a
/// reset: the trainer signs in again).
/// The page comes first and asks for the reset itself (`/portal/lab/reset/now`): a reset
/// asked for here would stop the lab before this answer reached the browser.
async fn dashboard_reset(State(p): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    let _token = lab_admin!(p, headers);
    render(&ResettingPage)
}

/// What the resetting page sends once it is shown: `POST /lab/reset` as the administrator.
async fn dashboard_reset_now(State(p): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    let token = lab_admin!(p, headers);
    let (status, answer) = p.api(reqwest::Method::POST, "/lab/reset", Some(&token), None).await;
    (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), axum::Json(answer)).into_response()
}

// ----- Advanced Security Settings for the domain root -----

async fn security_render(p: &Portal, status: StatusCode, error: Option<String>, done: Option<String>) -> Response {
    let Some(a) = p.cfg.adds.as_ref() else {
        return render_status(StatusCode::NOT_FOUND, &SecurityPage::empty("This lab has no AD DS.".into()));
    };
    let domain = a.base_dn.split(',').next().and_then(|c| c.split_once('=')).map_or(String::new(), |(_, v)| v.to_string());
    let page = match delegation::entries(a).await {
        Ok(entries) => SecurityPage { domain, base_dn: a.base_dn.clone(), entries, error, done, ..SecurityPage::empty(String::new()) },
        Err(e) => {
            SecurityPage { domain, error: Some(format!("The domain root cannot be read: {e}")), ..SecurityPage::empty(String::new()) }
        }
    };
    render_status(status, &page)
}

async fn security_page(State(p): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    let _token = lab_admin!(p, headers);
    security_render(&p, StatusCode::OK, None, None).await
}

/// Add: one entry per permission ticked, written by the DC's own rules.
async fn security_add(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<Vec<(String, String)>>) -> Response {
    let _token = lab_admin!(p, headers);
    let Some(a) = p.cfg.adds.as_ref() else { return security_render(&p, StatusCode::NOT_FOUND, None, None).await };
    let added = match delegation::NewEntry::from_form(&f) {
        Ok(e) => delegation::add(a, &e).await.map(|()| e),
        Err(e) => Err(e),
    };
    match added {
        Ok(e) => {
            let what = e.rights.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ");
            let done = format!("{} {} for {} added.", if e.allow { "Allow" } else { "Deny" }, what, e.principal);
            security_render(&p, StatusCode::OK, None, Some(done)).await
        }
        Err(e) => security_render(&p, StatusCode::BAD_REQUEST, Some(e), None).await,
    }
}

#[derive(Deserialize)]
struct RemoveForm {
    index: usize,
}

async fn security_remove(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<RemoveForm>) -> Response {
    let _token = lab_admin!(p, headers);
    let Some(a) = p.cfg.adds.as_ref() else { return security_render(&p, StatusCode::NOT_FOUND, None, None).await };
    match delegation::remove(a, f.index).await {
        Ok(()) => security_render(&p, StatusCode::OK, None, Some("The entry was removed.".into())).await,
        Err(e) => security_render(&p, StatusCode::BAD_REQUEST, Some(e), None).await,
    }
}

/// Back to the dashboard after a switch, or the dashboard with the API's refusal.
async fn dashboard_after(p: &Portal, token: &str, status: u16, answer: &Value) -> Response {
    if (200..300).contains(&status) {
        return Redirect::to("/portal/lab").into_response();
    }
    let mut page = dashboard_state(p, token, &DashboardQuery::default()).await;
    page.error = Some(api_error(answer).1);
    render_status(StatusCode::BAD_REQUEST, &page)
}

#[derive(Deserialize)]
struct ClockForm {
    advance: String,
}

async fn dashboard_clock(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<ClockForm>) -> Response {
    let token = lab_admin!(p, headers);
    let (status, body) = p.api(reqwest::Method::POST, "/lab/clock", Some(&token), Some(json!({ "advance": f.advance.trim() }))).await;
    if status != 200 {
        return dashboard_after(&p, &token, status, &body).await;
    }
    // the move may have outlived the session's token (tokens live on the lab clock)
    let token = p.fresh_admin_token(&headers, token).await;
    // Connect's scheduler runs what the clock's move made due (404: no engine)
    p.api(reqwest::Method::POST, "/lab/engine/control", Some(&token), Some(json!({ "action": "run-due" }))).await;
    dashboard_after(&p, &token, status, &body).await
}

#[derive(Deserialize)]
struct EngineForm {
    action: String,
    ms: Option<u64>,
}

async fn dashboard_engine(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<EngineForm>) -> Response {
    let token = lab_admin!(p, headers);
    let body = match (f.action.as_str(), f.ms) {
        ("stop" | "start", _) => json!({ "action": f.action }),
        ("delay", Some(ms)) => json!({ "action": "delay", "ms": ms }),
        _ => return (StatusCode::BAD_REQUEST, "action: stop, start, or delay with ms").into_response(),
    };
    let (status, body) = p.api(reqwest::Method::POST, "/lab/engine/control", Some(&token), Some(body)).await;
    dashboard_after(&p, &token, status, &body).await
}

#[derive(Deserialize)]
struct AgentForm {
    agent: String,
    /// `stop`, `start`, `wrong-key`, `right-key`, `no-dc`, `dc`, `delay` (with `ms`).
    action: String,
    ms: Option<u64>,
}

/// An authentication agent's switch from the dashboard.
async fn dashboard_agent(State(p): State<Shared>, headers: axum::http::HeaderMap, Form(f): Form<AgentForm>) -> Response {
    let token = lab_admin!(p, headers);
    let (key, value) = match (f.action.as_str(), f.ms) {
        ("stop", _) => ("stopped", json!(true)),
        ("start", _) => ("stopped", json!(false)),
        ("wrong-key", _) => ("wrongKey", json!(true)),
        ("right-key", _) => ("wrongKey", json!(false)),
        ("no-dc", _) => ("directoryUnreachable", json!(true)),
        ("dc", _) => ("directoryUnreachable", json!(false)),
        ("delay", Some(ms)) => ("delayMs", json!(ms)),
        _ => return (StatusCode::BAD_REQUEST, "action: stop, start, wrong-key, right-key, no-dc, dc, or delay with ms").into_response(),
    };
    let body = json!({ "agent": f.agent, key: value });
    let (status, body) = p.api(reqwest::Method::POST, "/lab/engine/pta/faults", Some(&token), Some(body)).await;
    dashboard_after(&p, &token, status, &body).await
}

/// How many dashboards may watch the lab live at once (each looks at the API twice a second).
const MAX_STREAMS: usize = 16;

/// Server-sent events: `changed` whenever the clock, the engine's state or log, or the outbox
/// moved, so that the dashboard refreshes itself. The data says which parts moved.
async fn dashboard_stream(State(p): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    let token = lab_admin!(p, headers);
    let Some(slot) = StreamSlot::take(&p) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "Too many live dashboards are open; reload later.").into_response();
    };
    const PARTS: [(&str, &str); 6] = [
        ("engine", "/lab/engine"),
        ("pta", "/lab/engine/pta"),
        ("outbox", "/lab/outbox"),
        ("trace", "/lab/engine/trace"),
        ("fault", "/lab/adds/fault"),
        ("rights", "/lab/adds/rights"),
    ];
    let stream = futures::stream::unfold((p, token, slot, Vec::<u64>::new()), |(p, token, slot, last)| async move {
        loop {
            // what the page shows that can change — not the clock (a running lab clock moves
            // all the time) and not the AD DS's operations (the page's own LDAP reads are
            // among them)
            let mut now = Vec::with_capacity(PARTS.len());
            for (_, path) in PARTS {
                let (_, v) = p.api(reqwest::Method::GET, path, Some(&token), None).await;
                now.push(v.to_string().bytes().fold(0xcbf2_9ce4_8422_2325u64, |a, b| (a ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)));
            }
            // the exercise's checklist: a task can be done by what no other part shows (a
            // setting saved in the admin center, an audit entry)
            let ticks = p
                .exercise_view(&token)
                .await
                .map(|v| v.tasks.iter().map(|t| u64::from(t.done)).fold(0u64, |a, d| a.wrapping_mul(31).wrapping_add(d + 1)));
            now.push(ticks.map_or(0, |t| t + 1));
            let moved: Vec<&str> = PARTS
                .iter()
                .chain([&("exercise", "")])
                .zip(&now)
                .enumerate()
                .filter(|(i, (_, h))| last.get(*i) != Some(*h))
                .map(|(_, ((n, _), _))| *n)
                .collect();
            if !moved.is_empty() {
                let event = Event::default().event("changed").data(moved.join(","));
                return Some((Ok::<_, std::convert::Infallible>(event), (p, token, slot, now)));
            }
            // the lab's state changes only through requests: a look twice a second is plenty
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// One of the [`MAX_STREAMS`] live dashboards; given back when its stream ends.
struct StreamSlot(Shared);

impl StreamSlot {
    fn take(p: &Shared) -> Option<StreamSlot> {
        let n = p.streams.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n >= MAX_STREAMS {
            p.streams.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return None;
        }
        Some(StreamSlot(p.clone()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A TLS client configuration trusting `roots`, with ring named here: a lab inside another
/// application never relies on (or installs) the process-wide default provider.
#[allow(deprecated)] // ring on purpose: docs/security.md, "ring, not AWS-LC, for TLS"
pub(crate) fn tls_with(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
