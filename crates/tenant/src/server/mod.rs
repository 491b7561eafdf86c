//! The tenant over HTTP(S): OpenID Connect metadata, JWKS and the v2.0 token endpoint
//! (resource-owner password and client-credentials grants) per tenant, and a Microsoft
//! Graph v1.0 subset. The handlers only translate HTTP to [`Tenant`] calls and back.

// Helpers return a finished error response as their Err: the handler sends it as it is.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

mod account;
pub mod engines;
mod groups;
pub mod guard;
mod idle;
mod lab;
mod policies;
mod protection;
pub mod writeback;

use crate::directory::{Actor, ClientError, ResetError, SignInError, Tenant, User};
use crate::token::{AccessClaims, GRAPH_AUDIENCE, LIFETIME_SECONDS, Signer, TokenError};

/// Everything the handlers share.
pub struct TenantServer {
    pub tenant: Mutex<Tenant>,
    pub signer: Signer,
    /// The https base URL clients are told to use (`https://localhost:PORT`).
    pub https_base: String,
    /// The lab clock (the tenant's too), readable without taking the tenant's lock.
    pub clock: clock::Clock,
    /// The door to on-premises: normally [`engines::RelayHub`], the relay to connected
    /// writeback engines.
    pub writeback: Arc<dyn crate::sspr::Writeback>,
    /// The engines' registry and relay links.
    pub relay: Arc<engines::RelayHub>,
    /// One async lock per user: a user's password operations that wait for on-premises run
    /// one at a time, so the cloud and AD take them in the same order.
    pub gates: writeback::Gates,
}

impl TenantServer {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Tenant> {
        self.tenant.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tenant_id(&self) -> Uuid {
        self.lock().id
    }

    /// v1 access tokens' issuer, as Graph checks it.
    pub fn access_issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_id())
    }
}

type Shared = Arc<TenantServer>;

pub fn app(state: Shared) -> Router {
    Router::new()
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid_configuration))
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/common/userrealm/{upn}", get(user_realm))
        .route("/v1.0/me", get(me))
        .route("/v1.0/users", get(list_users).post(create_user))
        .route("/v1.0/users/{id}", get(get_user).patch(patch_user).delete(delete_user))
        .route("/v1.0/users/{id}/assignLicense", post(assign_license))
        .route("/v1.0/users/{id}/authentication/passwordMethods", get(password_methods))
        .route("/v1.0/users/{id}/authentication/emailMethods", get(email_methods).post(add_email_method))
        .route("/v1.0/users/{id}/authentication/phoneMethods", get(phone_methods).post(add_phone_method))
        .route("/v1.0/users/{id}/authentication/methods/{method}/resetPassword", post(reset_password))
        .route("/v1.0/users/{id}/authentication/operations/{op}", get(get_operation))
        .route("/v1.0/auditLogs/directoryAudits", get(directory_audits))
        .route("/v1.0/directory/onPremisesSynchronization", get(get_sync))
        .route("/v1.0/directory/onPremisesSynchronization/{id}", get(get_sync_one).patch(patch_sync))
        .route("/lab/sspr/onPremisesIntegration", get(get_integration).patch(patch_integration))
        .route("/lab/sspr/policy", get(get_sspr_policy).patch(patch_sspr_policy))
        .route("/lab/sspr/flows", post(sspr_start))
        .route("/lab/sspr/flows/{flow}/codes", post(sspr_code))
        .route("/lab/sspr/flows/{flow}/verify", post(sspr_verify))
        .route("/lab/sspr/flows/{flow}/reset", post(sspr_reset))
        .route("/lab/sspr/flows/{flow}/unlock", post(sspr_unlock))
        .route("/lab/outbox", get(outbox))
        .route("/v1.0/me/changePassword", post(account::me_change_password))
        .route("/v1.0/users/{id}/changePassword", post(account::user_change_password))
        .route("/lab/signIn/changePassword", post(account::sign_in_change_password))
        .route("/v1.0/groups", get(groups::list_groups).post(groups::create_group))
        .route("/v1.0/groups/{id}", get(groups::get_group).delete(groups::delete_group))
        .route("/v1.0/groups/{id}/members", get(groups::list_members))
        .route("/v1.0/groups/{id}/members/$ref", post(groups::add_member))
        .route("/v1.0/groups/{id}/members/{member}/$ref", axum::routing::delete(groups::remove_member))
        .route("/v1.0/identityProtection/riskyUsers", get(protection::list_risky))
        .route("/v1.0/identityProtection/riskyUsers/confirmCompromised", post(protection::confirm_compromised))
        .route("/v1.0/identityProtection/riskyUsers/dismiss", post(protection::dismiss))
        .route("/v1.0/identityProtection/riskyUsers/{id}", get(protection::get_risky))
        .route("/lab/identityProtection/riskyUsers/{id}", axum::routing::patch(protection::lab_set_risk))
        .route("/lab/identityProtection/userRiskPolicy", get(protection::get_risk_policy).patch(protection::patch_risk_policy))
        .route("/v1.0/groupSettingTemplates", get(protection::setting_templates))
        .route("/v1.0/policies/authorizationPolicy", get(policies::get_authorization_policy).patch(policies::patch_authorization_policy))
        .route("/v1.0/groupSettings", get(protection::list_settings).post(protection::create_setting))
        .route("/v1.0/groupSettings/{id}", get(protection::get_setting).patch(protection::patch_setting).delete(protection::delete_setting))
        .route("/lab/clock", get(lab::get_clock).post(lab::advance_clock))
        .route("/lab/writeback/engines", get(engines::list).post(engines::register))
        .route("/lab/writeback/engines/{id}", axum::routing::delete(engines::remove))
        .route("/lab/writeback/settings", get(engines::get_settings).patch(engines::patch_settings))
        .route("/lab/sync", post(engines::run_sync))
        .route("/lab/sync/export", post(engines::sync_export))
        .route(relay::RELAY_PATH, get(engines::connect))
        .route("/v1.0/roleManagement/directory/roleAssignments", get(lab::list_assignments).post(lab::create_assignment))
        .route("/v1.0/roleManagement/directory/roleAssignments/{id}", axum::routing::delete(lab::delete_assignment))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), too_large))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// Open connections per listener; past it a new one is closed at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a connection may sit with nothing read or written (a kept-alive connection
/// between requests; the relay's WebSocket, once upgraded, has heartbeats of its own).
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// How much a listener holds on to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: std::time::Duration,
    pub header_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Serves `app` on `listener` (TLS when `tls` is given) until `shutdown` completes, with the
/// default [`Limits`].
pub async fn serve(listener: TcpListener, app: Router, tls: Option<Arc<rustls::ServerConfig>>, shutdown: impl Future<Output = ()>) {
    serve_with(listener, app, tls, Limits::default(), shutdown).await
}

/// Serves `app`; every connection is bounded: in number, in handshake time, in header time,
/// in idle time.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut conns = tokio::task::JoinSet::new();
    let mut last_report: Option<std::time::Instant> = None;
    let mut complain = |what: &str| {
        // at most one line every 10 s, however fast the refusals come
        if last_report.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(10)) {
            last_report = Some(std::time::Instant::now());
            tracing::warn!("HTTP listener: {what}");
        }
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        // out of descriptors: back off instead of spinning on the same error
                        complain(&format!("accept: {e}"));
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
                            Some(_) = conns.join_next(), if !conns.is_empty() => {}
                        }
                        continue;
                    }
                };
                if conns.len() >= limits.max_connections {
                    complain(&format!("{} connections open: refusing new ones", limits.max_connections));
                    drop(tcp);
                    continue;
                }
                // small request/answer exchanges (the relay above all) must not wait for Nagle
                let _ = tcp.set_nodelay(true);
                let (app, acceptor) = (app.clone(), acceptor.clone());
                conns.spawn(async move {
                    let (activity, watch) = idle::Activity::new();
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (app, busy) = (app.clone(), activity.busy());
                        async move {
                            let _busy = busy;
                            tower::ServiceExt::oneshot(app, req).await
                        }
                    });
                    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
                    builder
                        .http2()
                        .timer(TokioTimer::new())
                        .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
                        .keep_alive_timeout(std::time::Duration::from_secs(20));
                    let activity = watch.clone();
                    match acceptor {
                        Some(a) => {
                            let Ok(Ok(tls)) = tokio::time::timeout(limits.handshake_timeout, a.accept(tcp)).await else { return };
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(idle::Watched::new(tls, activity)), svc);
                            tokio::select! {
                                _ = conn => {}
                                _ = watch.idle(limits.idle_timeout) => {}
                            }
                        }
                        None => {
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(idle::Watched::new(tcp, activity)), svc);
                            tokio::select! {
                                _ = conn => {}
                                _ = watch.idle(limits.idle_timeout) => {}
                            }
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// The largest request body the tenant reads (Graph's own limit is about 4 MB).
pub const MAX_BODY: usize = 1024 * 1024;

/// A body over [`MAX_BODY`] gets an OData error rather than axum's plain-text 413. A
/// declared length over the limit is read and dropped first (up to 16 MiB), so that the
/// client, still sending, sees the answer instead of a reset connection.
async fn too_large(State(s): State<Shared>, req: Request, next: axum::middleware::Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared.filter(|n| *n > MAX_BODY) {
        if n <= 16 * MAX_BODY {
            let _ = axum::body::to_bytes(req.into_body(), n).await;
        }
        return graph_error(
            &s,
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &format!("The request body is larger than the lab's limit of {MAX_BODY} bytes."),
        );
    }
    let res = next.run(req).await;
    if res.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return res;
    }
    graph_error(
        &s,
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &format!("The request body is larger than the lab's limit of {MAX_BODY} bytes."),
    )
}

/// Every answer carries Graph's `request-id` (and echoes `client-request-id`).
async fn request_id(req: Request, next: axum::middleware::Next) -> Response {
    let client = req.headers().get("client-request-id").cloned();
    let id = Uuid::new_v4().to_string();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("request-id", v);
    }
    if let Some(c) = client {
        h.insert("client-request-id", c);
    }
    res
}

// ----- errors -----

/// 404 for a user (or other object) that is not there, in Graph's words.
fn no_such_resource(s: &TenantServer, id: &str) -> Response {
    graph_error(
        s,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

/// 400 for a body that is not the JSON object expected, in Graph's words.
fn unreadable_json(s: &TenantServer) -> Response {
    graph_error(
        s,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
    )
}

/// 403 when the caller's permissions or roles do not reach.
fn insufficient_privileges(s: &TenantServer) -> Response {
    graph_error(s, StatusCode::FORBIDDEN, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

/// Graph's OData error, dated by the lab clock.
fn graph_error(s: &TenantServer, status: StatusCode, code: &str, message: &str) -> Response {
    let now = s.clock.now();
    let date = format!("{}T{:02}:{:02}:{:02}", now.date(), now.hour(), now.minute(), now.second());
    let body = json!({ "error": { "code": code, "message": message, "innerError": {
        "date": date,
        "request-id": Uuid::new_v4().to_string(),
        "client-request-id": Uuid::new_v4().to_string(),
    }}});
    let mut r = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if status == StatusCode::UNAUTHORIZED {
        // Graph's challenge, which SDKs read to find where to sign in (here: this lab)
        let challenge = format!(
            "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            s.https_base
        );
        if let Ok(v) = header::HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

/// The token endpoint's error body, as the Microsoft identity platform writes it.
fn sts_error(status: StatusCode, error: &str, code: u32, description: &str, now: clock::OffsetDateTime) -> Response {
    let trace = Uuid::new_v4();
    let correlation = Uuid::new_v4();
    let stamp = format!("{} {:02}:{:02}:{:02}Z", now.date(), now.hour(), now.minute(), now.second());
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}"),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace.to_string(),
        "correlation_id": correlation.to_string(),
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn not_found(State(s): State<Shared>) -> Response {
    graph_error(&s, StatusCode::NOT_FOUND, "BadRequest", "Resource not found for the segment.")
}

// ----- OpenID Connect -----

fn check_tenant(s: &TenantServer, tenant: &str) -> Result<Uuid, Response> {
    let t = s.lock();
    let ok = tenant == t.id.to_string() || t.domains.iter().any(|d| d.eq_ignore_ascii_case(tenant)) || tenant == "organizations";
    if ok {
        return Ok(t.id);
    }
    let now = t.clock().now();
    Err(sts_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        now,
    ))
}

async fn openid_configuration(State(s): State<Shared>, Path(tenant): Path<String>) -> Response {
    let tid = match check_tenant(&s, &tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let b = &s.https_base;
    Json(json!({
        "token_endpoint": format!("{b}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{b}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "preferred_username", "tid", "ver"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }))
    .into_response()
}

async fn jwks(State(s): State<Shared>, Path(tenant): Path<String>) -> Response {
    if let Err(r) = check_tenant(&s, &tenant) {
        return r;
    }
    Json(serde_json::to_value(s.signer.jwks()).unwrap_or(Value::Null)).into_response()
}

/// MSAL's username/password flow asks this first: a managed (not federated) account.
async fn user_realm(State(s): State<Shared>, Path(upn): Path<String>) -> Response {
    let t = s.lock();
    let domain = upn.rsplit('@').next().unwrap_or_default().to_string();
    Json(json!({
        "ver": "1.0",
        "account_type": if t.domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) { "Managed" } else { "Unknown" },
        "domain_name": domain,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    }))
    .into_response()
}

/// The `scope` of a token response, in the form the client asked: the granted scopes named
/// with the resource URI when the request named them so (`https://graph.microsoft.com/User.Read`),
/// and a `resource/.default` asked for echoed back. Token caches (MSAL, azure-identity) keep a
/// token under the response's scopes and look it up by the scopes asked: answered in another
/// form, every call misses the cache. The OpenID Connect scopes keep their short names.
fn response_scope(requested: &str, granted: &str) -> String {
    const OIDC: [&str; 4] = ["openid", "profile", "email", "offline_access"];
    let resource = requested
        .split_whitespace()
        .filter_map(|s| s.rsplit_once('/').map(|(r, _)| r))
        .find(|r| GRAPH_RESOURCES.iter().any(|g| r.eq_ignore_ascii_case(g)));
    let mut out: Vec<String> = granted
        .split_whitespace()
        .map(|g| match resource {
            Some(r) if !OIDC.contains(&g) => format!("{r}/{g}"),
            _ => g.to_string(),
        })
        .collect();
    for asked in requested.split_whitespace().filter(|s| s.ends_with("/.default")) {
        if !out.iter().any(|o| o == asked) {
            out.push(asked.to_string());
        }
    }
    out.join(" ")
}

/// The names Graph goes by as a resource in a scope.
const GRAPH_RESOURCES: [&str; 2] = ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"];

/// Delegated permissions the lab's public client holds with admin consent.
const DELEGATED_SCOPES: &str = "Directory.AccessAsUser.All Group.ReadWrite.All IdentityRiskyUser.ReadWrite.All User.Read User.ReadBasic.All User.ReadWrite.All UserAuthenticationMethod.ReadWrite.All openid profile email";

async fn token(
    State(s): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let tid = match check_tenant(&s, &tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let now = s.lock().clock().now();
    let missing = |p: &str| {
        sts_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{p}'."),
            now,
        )
    };
    let Some(grant) = form.get("grant_type") else { return missing("grant_type") };
    let Some(scope) = form.get("scope") else {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter.",
            now,
        );
    };
    // client_secret_basic: the credentials in an Authorization header
    let (basic_id, basic_secret) = basic_auth(&headers).unzip();
    let Some(client_id) = form.get("client_id").cloned().or(basic_id) else { return missing("client_id") };
    let iat = now.unix_timestamp();
    let mut claims = AccessClaims {
        aud: GRAPH_AUDIENCE.into(),
        iss: s.access_issuer(),
        iat,
        nbf: iat,
        exp: iat + LIFETIME_SECONDS,
        tid: tid.to_string(),
        oid: String::new(),
        sub: String::new(),
        appid: client_id.clone(),
        ver: "1.0".into(),
        scp: None,
        roles: vec![],
        wids: vec![],
        upn: None,
        unique_name: None,
        name: None,
    };
    let mut refresh_token: Option<String> = None;
    let mut wants_id_token = false;
    match grant.as_str() {
        "password" => {
            let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
                return missing(if form.contains_key("username") { "password" } else { "username" });
            };
            let mut t = s.lock();
            if Uuid::parse_str(&client_id).ok().and_then(|id| t.app(&id)).is_none() {
                return unknown_app(&client_id, &t, now);
            }
            let user_id = match t.sign_in(username, password) {
                Ok(id) => id,
                Err(e) => return sign_in_error(&e, username, &t, now),
            };
            user_claims(&mut claims, t.user(&user_id).expect("signed in"));
            if scope.split_whitespace().any(|s| s == "offline_access") {
                refresh_token = t.issue_refresh_token(user_id, &client_id, scope);
            }
        }
        "refresh_token" => {
            let Some(presented) = form.get("refresh_token") else { return missing("refresh_token") };
            let mut t = s.lock();
            if Uuid::parse_str(&client_id).ok().and_then(|id| t.app(&id)).is_none() {
                return unknown_app(&client_id, &t, now);
            }
            let (user_id, first_scope) = match t.redeem_refresh_token(presented, &client_id) {
                Ok((user, first_scope, next)) => {
                    refresh_token = Some(next);
                    (user, first_scope)
                }
                Err(e) => return sts_error(StatusCode::BAD_REQUEST, "invalid_grant", e.code(), &e.message(), now),
            };
            user_claims(&mut claims, t.user(&user_id).expect("redeemed"));
            // an id token again when the chain began with openid
            wants_id_token = first_scope.split_whitespace().any(|s| s == "openid");
        }
        "client_credentials" => {
            if !scope.split_whitespace().all(|sc| sc.ends_with("/.default")) {
                return sts_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    1002012,
                    &format!(
                        "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                    ),
                    now,
                );
            }
            let Some(secret) = form.get("client_secret").cloned().or(basic_secret) else {
                return missing("client_assertion' or 'client_secret");
            };
            let t = s.lock();
            let app = match t.authenticate_app(&client_id, &secret) {
                Ok(a) => a,
                Err(ClientError::UnknownApp) => return unknown_app(&client_id, &t, now),
                Err(ClientError::InvalidSecret) => {
                    return sts_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        7000215,
                        &format!(
                            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                        ),
                        now,
                    );
                }
            };
            // the app's service principal object id stands in as oid
            claims.oid = app.client_id.to_string();
            claims.sub = app.client_id.to_string();
            claims.roles = app.permissions.clone();
        }
        other => {
            return sts_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
                now,
            );
        }
    }
    let access = s.signer.sign(&claims);
    let mut body = json!({
        "token_type": "Bearer",
        "scope": claims.scp.as_deref().map(|granted| response_scope(scope, granted)).unwrap_or_else(|| scope.clone()),
        "expires_in": LIFETIME_SECONDS,
        "ext_expires_in": LIFETIME_SECONDS,
        "access_token": access,
    });
    if let Some(rt) = refresh_token {
        body["refresh_token"] = Value::String(rt);
    }
    if (grant == "password" || grant == "refresh_token") && (wants_id_token || scope.split_whitespace().any(|s| s == "openid")) {
        // an id token (v2.0) for MSAL's account cache, and client_info when asked for
        let id_claims = json!({
            "aud": client_id, "iss": format!("{}/{tid}/v2.0", s.https_base), "iat": iat, "nbf": iat, "exp": iat + LIFETIME_SECONDS,
            "name": claims.name, "oid": claims.oid, "preferred_username": claims.upn, "sub": claims.sub, "tid": tid.to_string(), "ver": "2.0",
        });
        body["id_token"] = Value::String(s.signer.sign(&id_claims));
        if form.get("client_info").map(String::as_str) == Some("1") {
            let info = json!({ "uid": claims.oid, "utid": tid.to_string() }).to_string();
            body["client_info"] = Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(info));
        }
    }
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store, no-cache")], Json(body)).into_response()
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    let (id, secret) = String::from_utf8(raw).ok()?.split_once(':').map(|(a, b)| (a.to_string(), b.to_string()))?;
    Some((id, secret))
}

fn unknown_app(client_id: &str, t: &Tenant, now: clock::OffsetDateTime) -> Response {
    sts_error(
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
        &format!(
            "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            t.name
        ),
        now,
    )
}

/// A user's claims in an access token (the password and refresh grants).
fn user_claims(claims: &mut AccessClaims, u: &User) {
    claims.oid = u.id.to_string();
    claims.sub = u.id.to_string();
    claims.upn = Some(u.user_principal_name.clone());
    claims.unique_name = Some(u.user_principal_name.clone());
    claims.name = Some(u.display_name.clone());
    claims.scp = Some(DELEGATED_SCOPES.into());
    claims.wids = u.roles.iter().map(|r| r.template_id().to_string()).collect();
}

fn sign_in_error(e: &SignInError, username: &str, t: &Tenant, now: clock::OffsetDateTime) -> Response {
    let text = match e {
        SignInError::UnknownUser => format!("The user account {{EUII Hidden}} does not exist in the '{}' directory. To sign into this application, the account must be added to the directory.", t.id),
        SignInError::InvalidCredentials => "Error validating credentials due to invalid username or password.".into(),
        SignInError::Disabled => "The user account is disabled.".into(),
        SignInError::Locked => "Your account is temporarily locked to prevent unauthorized use. Try again later, and if you still have trouble, contact your admin.".into(),
        SignInError::PasswordChangeRequired => "The password is expired.".into(),
        SignInError::RiskyUserPasswordChange => "Password change is required due to a conditional access policy.".into(),
    };
    let _ = username; // never echoed: Entra hides the account (EUII)
    sts_error(StatusCode::BAD_REQUEST, "invalid_grant", e.code(), &text, now)
}

// ----- Graph -----

/// Who is calling Graph.
enum Caller {
    User { id: Uuid, scopes: Vec<String> },
    App { id: Uuid, roles: Vec<String> },
}

impl Caller {
    fn may_read_users(&self) -> bool {
        match self {
            Caller::User { scopes, .. } => scopes.iter().any(|s| {
                matches!(
                    s.as_str(),
                    "User.ReadBasic.All" | "User.Read.All" | "User.ReadWrite.All" | "Directory.Read.All" | "Directory.AccessAsUser.All"
                )
            }),
            Caller::App { roles, .. } => roles
                .iter()
                .any(|r| matches!(r.as_str(), "User.Read.All" | "User.ReadWrite.All" | "Directory.Read.All" | "Directory.ReadWrite.All")),
        }
    }
}

fn caller(s: &TenantServer, headers: &HeaderMap) -> Result<Caller, Response> {
    let unauthorized = |e: TokenError| graph_error(s, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", e.message());
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("").trim();
    let now = s.lock().clock().now().unix_timestamp();
    let c = s.signer.validate(token, &s.access_issuer(), now).map_err(unauthorized)?;
    match c.scp {
        Some(scp) => {
            let id = Uuid::parse_str(&c.oid).map_err(|_| unauthorized(TokenError::Malformed))?;
            Ok(Caller::User { id, scopes: scp.split_whitespace().map(str::to_string).collect() })
        }
        None => {
            let id = Uuid::parse_str(&c.oid).map_err(|_| unauthorized(TokenError::Malformed))?;
            Ok(Caller::App { id, roles: c.roles })
        }
    }
}

/// The properties Graph returns for a user when `$select` names none.
const DEFAULT_USER_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

fn user_json(u: &User) -> serde_json::Map<String, Value> {
    let on = u.on_premises.as_ref();
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("businessPhones", json!([]));
    put("displayName", json!(u.display_name));
    put("givenName", json!(u.given_name));
    put("jobTitle", Value::Null);
    put("mail", json!(u.mail));
    put("mobilePhone", Value::Null);
    put("officeLocation", Value::Null);
    put("preferredLanguage", Value::Null);
    put("surname", json!(u.surname));
    put("userPrincipalName", json!(u.user_principal_name));
    put("id", json!(u.id.to_string()));
    put("accountEnabled", json!(u.account_enabled));
    put("onPremisesSyncEnabled", if on.is_some() { json!(true) } else { Value::Null });
    put("onPremisesImmutableId", json!(on.map(|o| &o.immutable_id)));
    put("onPremisesSamAccountName", json!(on.map(|o| &o.sam_account_name)));
    put("onPremisesDomainName", json!(on.map(|o| &o.domain_name)));
    put("onPremisesDistinguishedName", json!(on.map(|o| &o.distinguished_name)));
    put("onPremisesSecurityIdentifier", json!(on.map(|o| &o.security_identifier)));
    put("passwordPolicies", if u.password_policies.is_empty() { Value::Null } else { json!(u.password_policies.join(", ")) });
    put("assignedLicenses", json!(u.licenses.iter().map(|l| json!({ "disabledPlans": [], "skuId": l.to_string() })).collect::<Vec<_>>()));
    put(
        "lastPasswordChangeDateTime",
        json!(u.last_password_change.format(&clock::format_description::well_known::Rfc3339).unwrap_or_default()),
    );
    m
}

/// `$select`: the listed properties (Graph rejects unknown ones); otherwise the defaults.
fn select(s: &TenantServer, u: &User, sel: Option<&str>) -> Result<Value, Response> {
    let all = user_json(u);
    let names: Vec<&str> = match sel {
        Some(s) => s.split(',').map(str::trim).filter(|x| !x.is_empty()).collect(),
        None => DEFAULT_USER_PROPERTIES.to_vec(),
    };
    let mut out = serde_json::Map::new();
    for n in names {
        let Some((k, v)) = all.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)) else {
            return Err(graph_error(
                s,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("Could not find a property named '{n}' on type 'Microsoft.DirectoryServices.User'."),
            ));
        };
        out.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(out))
}

fn context(s: &TenantServer, sel: Option<&str>, entity: bool) -> String {
    let cols = sel.map(|c| format!("({c})")).unwrap_or_default();
    format!("{}/v1.0/$metadata#users{cols}{}", s.https_base, if entity { "/$entity" } else { "" })
}

async fn me(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Caller::User { id, .. } = c else {
        return graph_error(&s, StatusCode::BAD_REQUEST, "BadRequest", "/me request is only valid with delegated authentication flow.");
    };
    let t = s.lock();
    let Some(u) = t.user(&id) else {
        return no_such_resource(&s, &id.to_string());
    };
    entity(&s, u, q.get("$select").map(String::as_str))
}

fn entity(s: &TenantServer, u: &User, sel: Option<&str>) -> Response {
    match select(s, u, sel) {
        Ok(Value::Object(mut m)) => {
            let mut out = serde_json::Map::new();
            out.insert("@odata.context".into(), json!(context(s, sel, true)));
            out.append(&mut m);
            Json(Value::Object(out)).into_response()
        }
        Ok(_) => graph_error(s, StatusCode::INTERNAL_SERVER_ERROR, "generalException", "unexpected shape"),
        Err(r) => r,
    }
}

async fn get_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let t = s.lock();
    let own = matches!(&c, Caller::User { id: me, .. } if t.find_user(&id).is_some_and(|u| u.id == *me));
    if !own && !c.may_read_users() {
        return insufficient_privileges(&s);
    }
    let Some(u) = t.find_user(&id) else {
        return no_such_resource(&s, &id.to_string());
    };
    entity(&s, u, q.get("$select").map(String::as_str))
}

async fn list_users(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !c.may_read_users() {
        return insufficient_privileges(&s);
    }
    let filter = match q.get("$filter").map(|f| parse_filter(&s, f)).transpose() {
        Ok(f) => f,
        Err(r) => return r,
    };
    let sel = q.get("$select").map(String::as_str);
    let t = s.lock();
    let mut value = vec![];
    for u in t.users() {
        if let Some((prop, want)) = &filter {
            let props = user_json(u);
            let have = props.iter().find(|(k, _)| k.eq_ignore_ascii_case(prop)).map(|(_, v)| v.clone()).unwrap_or(Value::Null);
            if !have.as_str().is_some_and(|h| h.eq_ignore_ascii_case(want)) {
                continue;
            }
        }
        match select(&s, u, sel) {
            Ok(v) => value.push(v),
            Err(r) => return r,
        }
    }
    Json(json!({ "@odata.context": context(&s, sel, false), "value": value })).into_response()
}

/// Graph's message for any password the policy refuses (it does not say which rule).
const COMPLEXITY_MESSAGE: &str =
    "The specified password does not comply with password complexity requirements. Please provide a different password.";

/// `PATCH /users/{id}`: profile properties and/or a passwordProfile (an administrator's
/// reset). The whole body is checked, and every refusal found, before anything changes.
async fn patch_user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let bad = |m: &str| graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", m);
    let Ok(Value::Object(props)) = serde_json::from_slice::<Value>(&body) else {
        return unreadable_json(&s);
    };
    let (edit, reset) = match parse_user_patch(&props) {
        Ok(x) => x,
        Err(m) => return bad(&m),
    };
    if edit.is_empty() && reset.is_none() {
        return bad("Nothing to update.");
    }
    let may_write = match &c {
        Caller::User { scopes, .. } => scopes
            .iter()
            .any(|x| matches!(x.as_str(), "Directory.AccessAsUser.All" | "User.ReadWrite.All" | "User-PasswordProfile.ReadWrite.All")),
        Caller::App { roles, .. } => roles.iter().any(|r| r == "User.ReadWrite.All" || r == "Directory.ReadWrite.All"),
    };
    if !may_write {
        return insufficient_privileges(&s);
    }
    let actor = match &c {
        Caller::User { id, .. } => Actor::User(*id),
        Caller::App { id, .. } => Actor::App(*id),
    };
    let mut t = s.lock();
    let Some(target) = t.find_user(&id).map(|u| u.id) else {
        drop(t);
        return no_such_resource(&s, &id.to_string());
    };
    if !edit.is_empty() {
        if !t.may_manage(actor, target) {
            drop(t);
            return insufficient_privileges(&s);
        }
        if t.user(&target).is_some_and(|u| u.synced()) && edit.touches_synced_properties() {
            drop(t);
            return bad(SYNCED_PROPERTY_MESSAGE);
        }
    }
    if let Some((password, force)) = reset {
        let refusal = match t.admin_reset(actor, target, &password, force) {
            Ok(()) => None,
            Err(ResetError::Forbidden) => Some(insufficient_privileges(&s)),
            Err(ResetError::NotFound) => Some(no_such_resource(&s, &id.to_string())),
            Err(ResetError::Policy(_)) => Some(bad(COMPLEXITY_MESSAGE)),
            Err(ResetError::PasswordRequired) => Some(bad("Invalid value for property 'passwordProfile.password'.")),
        };
        if let Some(r) = refusal {
            return r;
        }
    }
    if !edit.is_empty() {
        // checked above: cannot fail now
        let _ = t.update_user(actor, target, edit);
    }
    StatusCode::NO_CONTENT.into_response()
}

const SYNCED_PROPERTY_MESSAGE: &str =
    "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.";

/// The properties `PATCH /users/{id}` takes, with their types checked.
fn parse_user_patch(props: &serde_json::Map<String, Value>) -> Result<(crate::directory::ProfileEdit, Option<(String, bool)>), String> {
    let mut edit = crate::directory::ProfileEdit::default();
    let mut reset = None;
    let invalid = |k: &str| format!("Invalid value specified for property '{k}' of resource 'User'.");
    let text = |k: &str, v: &Value| match v {
        Value::Null => Ok(None),
        Value::String(x) => Ok(Some(x.clone())),
        _ => Err(invalid(k)),
    };
    for (k, v) in props {
        match k.as_str() {
            "displayName" => edit.display_name = Some(v.as_str().filter(|x| !x.trim().is_empty()).ok_or_else(|| invalid(k))?.to_string()),
            "givenName" => edit.given_name = Some(text(k, v)?),
            "surname" => edit.surname = Some(text(k, v)?),
            "mail" => edit.mail = Some(text(k, v)?),
            "accountEnabled" => edit.account_enabled = Some(v.as_bool().ok_or_else(|| invalid(k))?),
            "passwordPolicies" => {
                let list: Vec<String> = match text(k, v)? {
                    None => vec![],
                    Some(x) => x.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "None").map(str::to_string).collect(),
                };
                if list.iter().any(|p| p != "DisablePasswordExpiration" && p != "DisableStrongPassword") {
                    return Err(invalid(k));
                }
                edit.password_policies = Some(list);
            }
            "passwordProfile" => {
                let profile = v.as_object().ok_or("Invalid value for property 'passwordProfile'.")?;
                if let Some(other) = profile
                    .keys()
                    .find(|k| !matches!(k.as_str(), "password" | "forceChangePasswordNextSignIn" | "forceChangePasswordNextSignInWithMfa"))
                {
                    return Err(format!("Property '{other}' does not exist as a declared property or extension property."));
                }
                let password =
                    profile.get("password").and_then(Value::as_str).ok_or("Invalid value for property 'passwordProfile.password'.")?;
                let force = match profile.get("forceChangePasswordNextSignIn") {
                    None => true,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err("Invalid value for property 'forceChangePasswordNextSignIn'.".into()),
                };
                reset = Some((password.to_string(), force));
            }
            other => {
                return Err(format!(
                    "Property '{other}' cannot be updated in the lab (supported: displayName, givenName, surname, mail, accountEnabled, passwordPolicies, passwordProfile)."
                ));
            }
        }
    }
    Ok((edit, reset))
}

/// Creating and deleting users: an app with User.ReadWrite.All, or a delegated User
/// Administrator or Global Administrator.
fn user_manager(s: &TenantServer, headers: &HeaderMap) -> Result<(), Response> {
    use crate::roles::Role;
    let ok = match caller(s, headers)? {
        Caller::App { roles, .. } => roles.iter().any(|r| r == "User.ReadWrite.All" || r == "Directory.ReadWrite.All"),
        Caller::User { id, .. } => {
            s.lock().user(&id).is_some_and(|u| u.roles.iter().any(|r| matches!(r, Role::GlobalAdministrator | Role::UserAdministrator)))
        }
    };
    if ok { Ok(()) } else { Err(insufficient_privileges(s)) }
}

/// `POST /users`: accountEnabled, displayName, mailNickname, userPrincipalName and
/// passwordProfile are required, as in Graph; the UPN's domain must be verified and unused;
/// the password meets the cloud rules and Password Protection.
async fn create_user(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = user_manager(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else {
        return unreadable_json(&s);
    };
    let invalid = |p: &str| {
        graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("Invalid value specified for property '{p}' of resource 'User'."),
        )
    };
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string).filter(|v| !v.trim().is_empty());
    let Some(enabled) = m.get("accountEnabled").and_then(Value::as_bool) else { return invalid("accountEnabled") };
    let Some(display_name) = text("displayName") else { return invalid("displayName") };
    if text("mailNickname").is_none() {
        return invalid("mailNickname");
    }
    let Some(upn) = text("userPrincipalName") else { return invalid("userPrincipalName") };
    let Some(password) = m.get("passwordProfile").and_then(|p| p.get("password")).and_then(Value::as_str).map(str::to_string) else {
        return invalid("passwordProfile");
    };
    let force = m.get("passwordProfile").and_then(|p| p.get("forceChangePasswordNextSignIn")).and_then(Value::as_bool).unwrap_or(true);
    let mut t = s.lock();
    if !t.verified_domain(&upn) {
        drop(t);
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        );
    }
    if t.upn_taken(&upn) {
        drop(t);
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Another object with the same value for property userPrincipalName already exists.",
        );
    }
    let candidate = crate::directory::NewUser {
        user_principal_name: upn.clone(),
        display_name,
        given_name: text("givenName"),
        surname: text("surname"),
        mail: text("mail"),
        account_enabled: enabled,
        ..Default::default()
    };
    // the password is checked against the new user's own names, before anything exists
    let probe = User::probe(&candidate);
    if t.check_new_password(&probe, &password).is_err() {
        drop(t);
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", COMPLEXITY_MESSAGE);
    }
    let id = t.add_user(crate::directory::NewUser { password: Some(password), ..candidate });
    if force {
        t.user_mut(&id).expect("just added").force_change_password_next_sign_in = true;
    }
    let u = t.user(&id).expect("just added").clone();
    drop(t);
    let Ok(Value::Object(mut v)) = select(&s, &u, None) else {
        return graph_error(&s, StatusCode::INTERNAL_SERVER_ERROR, "generalException", "unexpected shape");
    };
    v.insert("@odata.context".into(), json!(context(&s, None, true)));
    let location = format!("{}/v1.0/users/{}", s.https_base, u.id);
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(Value::Object(v))).into_response()
}

/// `POST /users/{id}/assignLicense {"addLicenses": [{"skuId"}], "removeLicenses": [skuId]}`.
async fn assign_license(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    if let Err(r) = user_manager(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else {
        return unreadable_json(&s);
    };
    let sku = |v: &Value| v.as_str().and_then(|x| Uuid::parse_str(x).ok());
    let add: Option<Vec<Uuid>> = m
        .get("addLicenses")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|l| l.get("skuId").and_then(sku)).collect::<Option<_>>())
        .unwrap_or(None);
    let remove: Option<Vec<Uuid>> =
        m.get("removeLicenses").and_then(Value::as_array).map(|a| a.iter().map(sku).collect::<Option<_>>()).unwrap_or(None);
    let (Some(add), Some(remove)) = (add, remove) else {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid value specified for property 'addLicenses' or 'removeLicenses' of resource 'User'.",
        );
    };
    let known = [crate::directory::SKU_ENTRA_ID_P1, crate::directory::SKU_ENTRA_ID_P2];
    if let Some(unknown) = add.iter().find(|l| !known.contains(l)) {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("License {unknown} does not correspond to a valid company License."),
        );
    }
    let mut t = s.lock();
    let Some(uid) = t.find_user(&id).map(|u| u.id) else {
        drop(t);
        return no_such_resource(&s, &id);
    };
    let u = t.user_mut(&uid).expect("found");
    u.licenses.retain(|l| !remove.contains(l));
    for l in add {
        if !u.licenses.contains(&l) {
            u.licenses.push(l);
        }
    }
    let u = u.clone();
    drop(t);
    entity(&s, &u, None)
}

async fn delete_user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = user_manager(&s, &headers) {
        return r;
    }
    let mut t = s.lock();
    let Some(uid) = t.find_user(&id).map(|u| u.id) else {
        drop(t);
        return no_such_resource(&s, &id);
    };
    t.delete_user(&uid);
    StatusCode::NO_CONTENT.into_response()
}

/// Delegated callers with `UserAuthenticationMethod.ReadWrite.All`; application
/// permissions are not supported by these APIs.
fn method_admin(s: &TenantServer, headers: &HeaderMap) -> Result<Uuid, Response> {
    match caller(s, headers)? {
        Caller::User { id, scopes } if scopes.iter().any(|x| x == "UserAuthenticationMethod.ReadWrite.All") => Ok(id),
        _ => Err(insufficient_privileges(s)),
    }
}

/// Graph's fixed ids for the methods SSPR uses.
const EMAIL_METHOD_ID: &str = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f";
const MOBILE_PHONE_METHOD_ID: &str = "3179e48a-750b-4051-897c-87b9720928f7";

/// Who may read and change a user's authentication methods: the user, an app with
/// UserAuthenticationMethod.ReadWrite.All, or an administrator whose role reaches the user
/// (the same table as password resets). Returns the target's id.
fn methods_target(s: &TenantServer, headers: &HeaderMap, id: &str) -> Result<Uuid, Response> {
    let c = caller(s, headers)?;
    let t = s.lock();
    let target = t.find_user(id).map(|u| (u.id, u.roles.clone()));
    let Some((target, target_roles)) = target else {
        drop(t);
        return Err(no_such_resource(s, id));
    };
    let allowed = match &c {
        Caller::User { id: me, .. } if *me == target => true,
        Caller::User { id: me, scopes } => {
            scopes.iter().any(|x| x == "UserAuthenticationMethod.ReadWrite.All")
                && t.user(me).is_some_and(|a| {
                    crate::roles::can_reset_password(
                        &a.roles,
                        &crate::roles::Target { roles: &target_roles, in_role_assignable_group: false },
                    )
                })
        }
        Caller::App { roles, .. } => roles.iter().any(|r| r == "UserAuthenticationMethod.ReadWrite.All"),
    };
    drop(t);
    if allowed { Ok(target) } else { Err(insufficient_privileges(s)) }
}

fn method_json(m: &crate::sspr::Method) -> Value {
    match m {
        crate::sspr::Method::Email(a) => json!({ "id": EMAIL_METHOD_ID, "emailAddress": a }),
        crate::sspr::Method::MobilePhone(p) => {
            json!({ "id": MOBILE_PHONE_METHOD_ID, "phoneNumber": p, "phoneType": "mobile", "smsSignInState": "notSupported" })
        }
    }
}

fn list_methods(s: &TenantServer, headers: &HeaderMap, id: &str, kind: &str) -> Response {
    let target = match methods_target(s, headers, id) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let t = s.lock();
    let value: Vec<Value> =
        t.user(&target).map(|u| u.methods.iter().filter(|m| m.kind() == kind).map(method_json).collect()).unwrap_or_default();
    let collection = if kind == "email" { "emailMethods" } else { "phoneMethods" };
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#users('{target}')/authentication/{collection}", s.https_base), "value": value })).into_response()
}

async fn email_methods(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    list_methods(&s, &headers, &id, "email")
}

async fn phone_methods(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    list_methods(&s, &headers, &id, "mobilePhone")
}

/// Adds a method; a user has at most one of each kind here (Graph: one email method, one
/// phone of each type).
fn add_method(s: &TenantServer, headers: &HeaderMap, id: &str, method: crate::sspr::Method) -> Response {
    let target = match methods_target(s, headers, id) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut t = s.lock();
    let u = t.user_mut(&target).expect("found above");
    if u.methods.iter().any(|m| m.kind() == method.kind()) {
        drop(t);
        return graph_error(s, StatusCode::BAD_REQUEST, "badRequest", "A method of this type is already registered for the user.");
    }
    u.methods.push(method.clone());
    drop(t);
    (StatusCode::CREATED, Json(method_json(&method))).into_response()
}

async fn add_email_method(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let address = body_json(&body).and_then(|m| m.get("emailAddress").and_then(Value::as_str).map(str::to_string));
    match address {
        Some(a) if a.split_once('@').is_some_and(|(u, d)| !u.is_empty() && d.contains('.')) => {
            add_method(&s, &headers, &id, crate::sspr::Method::Email(a))
        }
        _ => graph_error(&s, StatusCode::BAD_REQUEST, "badRequest", "Invalid email address."),
    }
}

/// Phone numbers as Entra takes them: `+<country code> <number>` (e.g. `+1 4255550101`).
async fn add_phone_method(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let m = body_json(&body).unwrap_or_default();
    let number = m.get("phoneNumber").and_then(Value::as_str).unwrap_or_default().to_string();
    if m.get("phoneType").and_then(Value::as_str) != Some("mobile") {
        return graph_error(&s, StatusCode::BAD_REQUEST, "badRequest", "The lab keeps mobile phones only (phoneType \"mobile\").");
    }
    let valid = number.strip_prefix('+').and_then(|n| n.split_once(' ')).is_some_and(|(cc, rest)| {
        !cc.is_empty()
            && cc.len() <= 3
            && cc.chars().all(|c| c.is_ascii_digit())
            && rest.len() >= 4
            && rest.chars().all(|c| c.is_ascii_digit())
    });
    if !valid {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "badRequest",
            "Invalid phone number: expected '+<country code> <number>', e.g. '+1 4255550101'.",
        );
    }
    add_method(&s, &headers, &id, crate::sspr::Method::MobilePhone(number))
}

async fn password_methods(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = caller(&s, &headers) {
        return r;
    }
    let t = s.lock();
    let Some(u) = t.find_user(&id) else {
        drop(t);
        return no_such_resource(&s, &id);
    };
    Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{}')/authentication/passwordMethods", s.https_base, u.id),
        "value": [{ "id": crate::directory::PASSWORD_METHOD_ID, "password": null, "createdDateTime": null }],
    }))
    .into_response()
}

/// `POST /users/{id}/authentication/methods/{passwordMethodId}/resetPassword`:
/// `202 Accepted` with the `Location` of an operation to poll.
async fn reset_password(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((id, method)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let actor = match method_admin(&s, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if method != crate::directory::PASSWORD_METHOD_ID {
        return no_such_resource(&s, &method);
    }
    let new_password = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => match m.get("newPassword") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) => Some(p.clone()),
                Some(_) => {
                    return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", "Invalid value for property 'newPassword'.");
                }
            },
            _ => {
                return unreadable_json(&s);
            }
        }
    };
    let Some(target) = s.lock().find_user(&id).map(|u| u.id) else {
        return no_such_resource(&s, &id);
    };
    let result = writeback::through(
        &s,
        target,
        |t| t.reset_password_method(Actor::User(actor), target, new_password.as_deref()),
        |t, request, outcome| Ok(t.finish_reset_password_method(Actor::User(actor), request, outcome)),
    )
    .await;
    match result {
        Ok((op, generated)) => {
            let location = format!("{}/v1.0/users/{target}/authentication/operations/{}", s.https_base, op.id);
            let body = match generated {
                Some(p) => {
                    json!({ "@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.passwordResetResponse", s.https_base), "newPassword": p })
                }
                None => json!({}),
            };
            (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response()
        }
        Err(ResetError::Forbidden) => insufficient_privileges(&s),
        Err(ResetError::NotFound) => no_such_resource(&s, &id),
        Err(ResetError::Policy(_)) => graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", COMPLEXITY_MESSAGE),
        Err(ResetError::PasswordRequired) => graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "A new password must be supplied for a user whose password is managed on-premises.",
        ),
    }
}

async fn get_operation(State(s): State<Shared>, headers: HeaderMap, Path((id, op)): Path<(String, String)>) -> Response {
    if let Err(r) = method_admin(&s, &headers) {
        return r;
    }
    let t = s.lock();
    let found = match (t.find_user(&id).map(|u| u.id), Uuid::parse_str(&op)) {
        (Some(user), Ok(op_id)) => t.operation(user, op_id).cloned(),
        _ => None,
    };
    drop(t);
    let Some(o) = found else { return no_such_resource(&s, &op) };
    let mut v = serde_json::to_value(&o).unwrap_or(Value::Null);
    v["@odata.context"] = json!(format!("{}/v1.0/$metadata#microsoft.graph.passwordResetOperation", s.https_base));
    Json(v).into_response()
}

/// Roles that may read the directory audit log.
const AUDIT_READERS: &[crate::roles::Role] = &[
    crate::roles::Role::GlobalAdministrator,
    crate::roles::Role::ReportsReader,
    crate::roles::Role::SecurityAdministrator,
    crate::roles::Role::UserAdministrator,
    crate::roles::Role::HelpdeskAdministrator,
];

async fn directory_audits(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let t = s.lock();
    let allowed = match &c {
        Caller::User { id, .. } => t.user(id).is_some_and(|u| u.roles.iter().any(|r| AUDIT_READERS.contains(r))),
        Caller::App { roles, .. } => roles.iter().any(|r| r == "AuditLog.Read.All"),
    };
    if !allowed {
        drop(t);
        return insufficient_privileges(&s);
    }
    let want =
        q.get("$filter").and_then(|f| f.strip_prefix("activityDisplayName eq '")).and_then(|f| f.strip_suffix('\'')).map(str::to_string);
    let value: Vec<Value> = t
        .audit()
        .filter(|e| want.as_deref().is_none_or(|w| e.activity_display_name == w))
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#auditLogs/directoryAudits", s.https_base), "value": value })).into_response()
}

/// The directory settings endpoints: a Global Administrator with a delegated token only
/// (Graph supports no application permission for them).
fn global_admin(s: &TenantServer, headers: &HeaderMap) -> Result<(), Response> {
    let c = caller(s, headers)?;
    let ok = match c {
        Caller::User { id, .. } => s.lock().user(&id).is_some_and(|u| u.roles.contains(&crate::roles::Role::GlobalAdministrator)),
        Caller::App { .. } => false,
    };
    if ok { Ok(()) } else { Err(insufficient_privileges(s)) }
}

fn sync_object(t: &Tenant) -> Value {
    json!({ "id": t.id.to_string(), "configuration": {}, "features": serde_json::to_value(&t.sync_features).unwrap_or(Value::Null) })
}

async fn get_sync(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let value = vec![sync_object(&s.lock())];
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#directory/onPremisesSynchronization", s.https_base), "value": value }))
        .into_response()
}

async fn get_sync_one(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    if id != s.tenant_id().to_string() {
        return no_such_resource(&s, &id.to_string());
    }
    let mut obj = sync_object(&s.lock());
    obj["@odata.context"] = json!(format!("{}/v1.0/$metadata#directory/onPremisesSynchronization/$entity", s.https_base));
    Json(obj).into_response()
}

/// `PATCH .../onPremisesSynchronization/{id}` with `{"features": {"<name>Enabled": bool}}`.
async fn patch_sync(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    if id != s.tenant_id().to_string() {
        return no_such_resource(&s, &id.to_string());
    }
    let Ok(Value::Object(props)) = serde_json::from_slice::<Value>(&body) else {
        return unreadable_json(&s);
    };
    let Some(Value::Object(features)) = props.get("features") else {
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", "Invalid value for property 'features'.");
    };
    // Check everything, then apply: a refused request changes nothing.
    let mut next = s.lock().sync_features.clone();
    for (name, v) in features {
        let Some(on) = v.as_bool() else {
            return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &format!("Invalid value for property '{name}'."));
        };
        if !next.set(name, on) {
            return graph_error(
                &s,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!(
                    "Property '{name}' is not kept by the lab (known: passwordSyncEnabled, passwordWritebackEnabled, userForcePasswordChangeOnLogonEnabled, cloudPasswordPolicyForPasswordSyncedUsersEnabled)."
                ),
            );
        }
    }
    s.lock().sync_features = next;
    StatusCode::NO_CONTENT.into_response()
}

/// The lab's endpoint for SSPR's "On-premises integration" blade (Graph has no public API).
async fn get_integration(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let t = s.lock();
    let mut v = serde_json::to_value(&t.on_premises_integration).unwrap_or(Value::Null);
    // Writeback works only when the sync side is on too.
    v["writebackEnabled"] = json!(t.writeback_enabled());
    Json(v).into_response()
}

async fn patch_integration(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let Ok(Value::Object(props)) = serde_json::from_slice::<Value>(&body) else {
        return unreadable_json(&s);
    };
    let mut next = s.lock().on_premises_integration.clone();
    for (name, v) in &props {
        let (Some(on), slot) = (
            v.as_bool(),
            match name.as_str() {
                "writeBackPasswords" => &mut next.write_back_passwords,
                "allowUnlockWithoutReset" => &mut next.allow_unlock_without_reset,
                "writeBackGraphChangePassword" => &mut next.write_back_graph_change_password,
                _ => {
                    return graph_error(
                        &s,
                        StatusCode::BAD_REQUEST,
                        "Request_BadRequest",
                        &format!(
                            "Unknown setting '{name}' (known: writeBackPasswords, allowUnlockWithoutReset, writeBackGraphChangePassword)."
                        ),
                    );
                }
            },
        ) else {
            return graph_error(
                &s,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("Invalid value for '{name}': expected true or false."),
            );
        };
        *slot = on;
    }
    s.lock().on_premises_integration = next;
    StatusCode::NO_CONTENT.into_response()
}

// ----- SSPR (the portal's steps as JSON; no sign-in: the user has lost the password) -----

fn sspr_error(e: &crate::sspr::Error) -> Response {
    use crate::sspr::Error::*;
    let status = match e {
        UnknownUser | FlowExpired => StatusCode::NOT_FOUND,
        NotEnabled | NotLicensed | NotInScopedGroup | WritebackNotEnabled | NotProperlyConfigured => StatusCode::FORBIDDEN,
        OnPremisesAdminActionRequired | OnPremisesConnectivity => StatusCode::BAD_GATEWAY,
        // written on-premises, not (yet) in the cloud: "wait a few minutes"
        OnPremisesSuccessCloudFailure => StatusCode::SERVICE_UNAVAILABLE,
        Blocked => StatusCode::TOO_MANY_REQUESTS,
        NotAllowed => StatusCode::CONFLICT,
        Policy { .. } | BadCode => StatusCode::BAD_REQUEST,
    };
    // the "Support code" the portal shows on error pages
    let body = json!({ "error": { "code": e.code(), "message": e.message(), "supportCode": Uuid::new_v4().to_string() } });
    (status, Json(body)).into_response()
}

fn body_json(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

fn bad_body(s: &TenantServer, what: &str) -> Response {
    graph_error(s, StatusCode::BAD_REQUEST, "BadRequest", &format!("Expected a JSON object with {what}."))
}

async fn sspr_start(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let Some(upn) = body_json(&body).and_then(|m| m.get("userPrincipalName").and_then(Value::as_str).map(str::to_string)) else {
        return bad_body(&s, "\"userPrincipalName\"");
    };
    let writeback_up = s.writeback.available();
    let mut t = s.lock();
    match t.sspr_start(&upn, writeback_up) {
        Ok(f) => {
            let u = t.user(&f.user).expect("flow user");
            let methods: Vec<Value> = t.usable_methods(u).iter().map(|m| json!({ "type": m.kind(), "display": m.masked() })).collect();
            (StatusCode::CREATED, Json(json!({ "id": f.id.to_string(), "gatesRequired": f.gates_required, "methods": methods, "unlockOffered": f.unlock_offered }))).into_response()
        }
        Err(e) => sspr_error(&e),
    }
}

/// A flow id from the path; anything unparseable is a flow that does not exist.
fn flow_id(flow: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(flow).map_err(|_| sspr_error(&crate::sspr::Error::FlowExpired))
}

async fn sspr_code(State(s): State<Shared>, Path(flow): Path<String>, body: axum::body::Bytes) -> Response {
    let id = match flow_id(&flow) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(method) = body_json(&body).and_then(|m| m.get("method").and_then(Value::as_str).map(str::to_string)) else {
        return bad_body(&s, "\"method\" (email or mobilePhone)");
    };
    match s.lock().sspr_send_code(id, &method) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "expiresInSeconds": crate::sspr::CODE_LIFETIME.as_secs() }))).into_response(),
        Err(e) => sspr_error(&e),
    }
}

async fn sspr_verify(State(s): State<Shared>, Path(flow): Path<String>, body: axum::body::Bytes) -> Response {
    let id = match flow_id(&flow) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let m = body_json(&body).unwrap_or_default();
    let (Some(method), Some(code)) = (m.get("method").and_then(Value::as_str), m.get("code").and_then(Value::as_str)) else {
        return bad_body(&s, "\"method\" and \"code\"");
    };
    match s.lock().sspr_verify(id, method, code) {
        Ok((passed, required)) => Json(json!({ "gatesPassed": passed, "gatesRequired": required })).into_response(),
        Err(e) => sspr_error(&e),
    }
}

async fn sspr_reset(State(s): State<Shared>, Path(flow): Path<String>, body: axum::body::Bytes) -> Response {
    let id = match flow_id(&flow) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(password) = body_json(&body).and_then(|m| m.get("newPassword").and_then(Value::as_str).map(str::to_string)) else {
        return bad_body(&s, "\"newPassword\"");
    };
    let Some(user) = s.lock().flow_user(id) else { return sspr_error(&crate::sspr::Error::FlowExpired) };
    let result =
        writeback::through(&s, user, |t| t.sspr_reset(id, &password), |t, request, outcome| t.finish_sspr_reset(id, request, outcome))
            .await;
    match result {
        Ok(()) => Json(json!({ "result": "succeeded" })).into_response(),
        Err(e) => sspr_error(&e),
    }
}

async fn sspr_unlock(State(s): State<Shared>, Path(flow): Path<String>) -> Response {
    let id = match flow_id(&flow) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(user) = s.lock().flow_user(id) else { return sspr_error(&crate::sspr::Error::FlowExpired) };
    let result = writeback::through(
        &s,
        user,
        |t| t.sspr_unlock(id).map(crate::directory::Next::Writeback),
        |t, request, outcome| t.finish_sspr_unlock(id, request, outcome),
    )
    .await;
    match result {
        Ok(()) => Json(json!({ "result": "succeeded" })).into_response(),
        Err(e) => sspr_error(&e),
    }
}

/// The lab's outbox: the codes "sent" by email and text message, for tests and trainees.
async fn outbox(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let t = s.lock();
    let value: Vec<Value> =
        t.outbox(q.get("to").map(String::as_str)).into_iter().map(|m| serde_json::to_value(m).unwrap_or(Value::Null)).collect();
    Json(json!({ "value": value })).into_response()
}

async fn get_sspr_policy(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let p = s.lock().sspr_policy.clone();
    let mut v = serde_json::to_value(&p).unwrap_or(Value::Null);
    if let crate::sspr::Enabled::Selected(g) = p.enabled {
        v["selectedGroupId"] = json!(g.to_string());
    }
    Json(v).into_response()
}

/// `PATCH /lab/sspr/policy`: `enabled` ("None" | "Selected" | "All"; Selected with
/// `selectedGroupId`, an existing group), `methodsRequired` (1 | 2), `emailEnabled`,
/// `mobilePhoneEnabled`, `notifyUsersOnPasswordReset`, `notifyAdminsOnAdminReset`.
/// Checked whole before it applies.
async fn patch_sspr_policy(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return bad_body(&s, "policy settings") };
    let mut next = s.lock().sspr_policy.clone();
    for (k, v) in &m {
        let ok = match (k.as_str(), v) {
            ("enabled", Value::String(e)) if e == "None" => {
                next.enabled = crate::sspr::Enabled::None;
                true
            }
            ("enabled", Value::String(e)) if e == "All" => {
                next.enabled = crate::sspr::Enabled::All;
                true
            }
            ("enabled", Value::String(e)) if e == "Selected" => {
                let group = m.get("selectedGroupId").and_then(Value::as_str).and_then(|g| Uuid::parse_str(g).ok());
                match group.filter(|g| s.lock().group(g).is_some()) {
                    Some(g) => {
                        next.enabled = crate::sspr::Enabled::Selected(g);
                        true
                    }
                    None => false,
                }
            }
            ("selectedGroupId", _) => m.get("enabled").is_some_and(|e| e == "Selected"),
            ("notifyUsersOnPasswordReset", Value::Bool(b)) => {
                next.notify_users_on_password_reset = *b;
                true
            }
            ("notifyAdminsOnAdminReset", Value::Bool(b)) => {
                next.notify_admins_on_admin_reset = *b;
                true
            }
            ("methodsRequired", Value::Number(n)) if matches!(n.as_u64(), Some(1 | 2)) => {
                next.methods_required = n.as_u64().unwrap_or(1) as u8;
                true
            }
            ("emailEnabled", Value::Bool(b)) => {
                next.email_enabled = *b;
                true
            }
            ("mobilePhoneEnabled", Value::Bool(b)) => {
                next.mobile_phone_enabled = *b;
                true
            }
            _ => false,
        };
        if !ok {
            return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &format!("Invalid setting '{k}': {v}."));
        }
    }
    s.lock().sspr_policy = next;
    StatusCode::NO_CONTENT.into_response()
}

/// `$filter`: `prop eq 'value'` on the properties the lab indexes.
fn parse_filter(s: &TenantServer, f: &str) -> Result<(String, String), Response> {
    let bad = || {
        graph_error(
            s,
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            &format!(
                "Unsupported or invalid query filter clause specified for property '{}' of resource 'User'.",
                f.split_whitespace().next().unwrap_or("")
            ),
        )
    };
    let parts: Vec<&str> = f.splitn(3, ' ').collect();
    let [prop, op, value] = parts.as_slice() else { return Err(bad()) };
    let allowed = ["userPrincipalName", "onPremisesImmutableId", "id", "mail", "displayName"];
    if !op.eq_ignore_ascii_case("eq") || !allowed.iter().any(|a| a.eq_ignore_ascii_case(prop)) {
        return Err(bad());
    }
    let v = value.trim().strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).ok_or_else(bad)?;
    Ok((prop.to_string(), v.replace("''", "'")))
}

use axum::Json;

#[cfg(test)]
mod tests {
    use super::response_scope;

    #[test]
    fn the_response_scope_answers_in_the_form_asked() {
        let granted = "User.Read Directory.AccessAsUser.All openid profile";
        assert_eq!(response_scope("User.Read openid", granted), granted);
        assert_eq!(
            response_scope("https://graph.microsoft.com/User.Read openid profile", granted),
            "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Directory.AccessAsUser.All openid profile"
        );
        assert_eq!(
            response_scope("https://graph.microsoft.com/.default offline_access openid profile", granted),
            "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Directory.AccessAsUser.All openid profile https://graph.microsoft.com/.default"
        );
        // what a cache looks up is a subset of what it stored
        for asked in ["https://graph.microsoft.com/.default", "https://graph.microsoft.com/User.Read", "User.Read"] {
            let answer = response_scope(asked, granted);
            assert!(asked.split(' ').all(|a| answer.split(' ').any(|s| s == a)), "{asked} -> {answer}");
        }
    }
}
