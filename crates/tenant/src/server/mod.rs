//! The tenant over HTTP(S): OpenID Connect metadata, JWKS and the v2.0 token endpoint
//! (resource-owner password and client-credentials grants) per tenant, and a Microsoft
//! Graph v1.0 subset. The handlers only translate HTTP to [`Tenant`] calls and back.

// Helpers return a finished error response as their Err: the handler sends it as it is.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

mod account;
mod apps;
mod audit;
mod authorize;
mod batch;
mod cloudsync;
pub mod engines;
mod groups;
pub mod guard;
mod idle;
mod lab;
mod methods;
mod oidc;
mod onprem;
mod policies;
mod protection;
pub mod pta;
mod query;
mod sspr;
mod users;
pub mod writeback;

use audit::*;
use methods::*;
use oidc::*;
use onprem::*;
use sspr::*;
use users::*;

use crate::directory::{Actor, ClientError, ResetError, SignInError, Tenant, User};
use crate::token::{AccessClaims, GRAPH_AUDIENCE, LIFETIME_SECONDS, Signer, TokenError};

impl TenantServer {
    /// The base URL to hand a client: the lab under the name and port the request reached it
    /// by (the guard let only the lab's own names in), so a trainee's laptop that reached
    /// `https://lab1.classroom.example:8443` is sent there and the engine on the server, which
    /// reached `https://localhost:8443`, is sent there; `https_base` when the request came by
    /// another port (the plain HTTP listener) or names no host.
    pub fn base_for(&self, headers: &HeaderMap) -> String {
        let port = self.https_base.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
        match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
            Some(h) if h.rsplit_once(':').is_some_and(|(_, p)| p == port) && !h.contains(['/', '@', ' ']) => format!("https://{h}"),
            _ => self.https_base.clone(),
        }
    }
}

/// Everything the handlers share.
pub struct TenantServer {
    pub tenant: Mutex<Tenant>,
    pub signer: Signer,
    /// The lab's own https base URL (`https://localhost:PORT`, or the first name it is served
    /// under): its tokens' issuer, and the base of the URLs it hands out when a request names
    /// no other of its names ([`TenantServer::base_for`]).
    pub https_base: String,
    /// The lab clock (the tenant's too), readable without taking the tenant's lock.
    pub clock: clock::Clock,
    /// The door to on-premises: normally [`engines::RelayHub`], the relay to connected
    /// writeback engines.
    pub writeback: Arc<dyn crate::sspr::Writeback>,
    /// The engines' registry and relay links.
    pub relay: Arc<engines::RelayHub>,
    /// Pass-through authentication's agents and queue.
    pub pta: Arc<pta::PtaHub>,
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
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::authorize))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(authorize::devicecode))
        .route("/{tenant}/oauth2/v2.0/logout", get(authorize::logout))
        .route("/{tenant}/login", post(authorize::login))
        .route("/devicelogin", get(authorize::device_page).post(authorize::device_code_entered))
        .route("/common/userrealm/{upn}", get(user_realm))
        .route("/oidc/userinfo", get(userinfo).post(userinfo))
        .route("/v1.0/me", get(me))
        .route("/v1.0/$batch", post(batch::batch))
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
        .route("/lab/cloudsync/passwordWritebackConfiguration", post(onprem::cloud_sync_writeback))
        .route("/lab/cloudsync/job", get(cloudsync::get_job).patch(cloudsync::patch_job))
        .route("/lab/cloudsync/job/restart", post(cloudsync::restart_job))
        .route("/v1.0/auditLogs/provisioning", get(cloudsync::provisioning))
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
        .route("/v1.0/groups/$count", get(groups::count_groups))
        .route("/v1.0/applications", get(apps::list_applications).post(apps::create_application))
        .route("/v1.0/applications/{id}", get(apps::get_application).patch(apps::patch_application).delete(apps::delete_application))
        .route("/v1.0/applications/{id}/addPassword", post(apps::add_password))
        .route("/v1.0/applications/{id}/removePassword", post(apps::remove_password))
        .route("/v1.0/servicePrincipals", get(apps::list_service_principals).post(apps::create_service_principal))
        .route("/v1.0/servicePrincipals/{id}", get(apps::get_service_principal).delete(apps::delete_service_principal))
        .route("/v1.0/me/memberOf", get(groups::me_member_of))
        .route("/v1.0/me/transitiveMemberOf", get(groups::me_transitive_member_of))
        .route("/v1.0/me/checkMemberGroups", post(groups::me_check_member_groups))
        .route("/v1.0/me/getMemberObjects", post(groups::me_get_member_objects))
        .route("/v1.0/users/{id}/memberOf", get(groups::user_member_of))
        .route("/v1.0/users/{id}/transitiveMemberOf", get(groups::user_transitive_member_of))
        .route("/v1.0/users/{id}/checkMemberGroups", post(groups::check_member_groups))
        .route("/v1.0/users/{id}/getMemberObjects", post(groups::get_member_objects))
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
        .route("/lab/pta", get(pta::get_feature).patch(pta::patch_feature))
        .route("/lab/pta/settings", get(pta::get_settings).patch(pta::patch_settings))
        .route(relay::pta::AGENTS_PATH, get(pta::list).post(pta::register))
        .route("/lab/pta/agents/{id}", axum::routing::delete(pta::remove))
        .route(relay::pta::QUEUE_PATH, get(pta::connect))
        .route("/v1.0/auditLogs/signIns", get(sign_ins))
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
    // each connection's activity, by task, in the order they came (to choose one to shed)
    let mut open: std::collections::HashMap<tokio::task::Id, (u64, idle::Activity, tokio::task::AbortHandle)> = Default::default();
    let mut opened = 0u64;
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
                            Some(done) = conns.join_next_with_id(), if !conns.is_empty() => { open.remove(&ended(done)); }
                        }
                        continue;
                    }
                };
                if open.len() >= limits.max_connections {
                    // room for the lab's own parts (the portal, the engine's relay and exports)
                    // however many connections a client holds: one not in a request goes
                    match idle::Activity::to_shed(open.iter().map(|(id, (seq, a, _))| (*id, *seq, a))) {
                        Some(id) => {
                            if let Some((_, _, handle)) = open.remove(&id) {
                                handle.abort();
                            }
                        }
                        None => {
                            complain(&format!("{} connections open, each in a request: refusing new ones", limits.max_connections));
                            drop(tcp);
                            continue;
                        }
                    }
                }
                // small request/answer exchanges (the relay above all) must not wait for Nagle
                let _ = tcp.set_nodelay(true);
                let (app, acceptor) = (app.clone(), acceptor.clone());
                let (activity, watch) = idle::Activity::new();
                let seen = activity.clone();
                let handle = conns.spawn(async move {
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
                opened += 1;
                open.insert(handle.id(), (opened, seen, handle));
            }
            Some(done) = conns.join_next_with_id(), if !conns.is_empty() => { open.remove(&ended(done)); }
        }
    }
    conns.shutdown().await;
}

/// The task a finished (or aborted) connection ran on.
fn ended(done: Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, ())) => id,
        Err(e) => e.id(),
    }
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

tokio::task_local! {
    /// This request's (`request-id`, `client-request-id`), for the error body to repeat.
    static REQUEST_IDS: (String, String);
}

/// Every answer carries Graph's `request-id` and `client-request-id` (the caller's, echoed, or
/// a new one), and an error's `innerError` names the same two, as Graph's do.
async fn request_id(req: Request, next: axum::middleware::Next) -> Response {
    let id = Uuid::new_v4().to_string();
    let client = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let mut res = REQUEST_IDS.scope((id.clone(), client.clone()), next.run(req)).await;
    let h = res.headers_mut();
    for (name, value) in [("request-id", id), ("client-request-id", client)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
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

/// 400 past the directory's object quota, in Graph's words.
fn quota_exceeded(s: &TenantServer) -> Response {
    graph_error(s, StatusCode::BAD_REQUEST, "Directory_QuotaExceeded", crate::directory::QUOTA_MESSAGE)
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

/// A JSON request body read into `T`, so an endpoint is a struct and a function. The one
/// rejection answers in Graph's shape: a body that is not JSON is Graph's "Unable to read
/// JSON request payload" (400 BadRequest); one that does not fit `T` — a missing property, a
/// wrong type, a property `T` does not know (with `deny_unknown_fields`) — is 400
/// Request_BadRequest naming it.
pub(crate) struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<Shared> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, s: &Shared) -> Result<Self, Response> {
        let bytes = axum::body::Bytes::from_request(req, s).await.map_err(IntoResponse::into_response)?;
        // JSON first, then its shape: truncated JSON must not read as a wrong type
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| unreadable_json(s))?;
        serde::Deserialize::deserialize(v)
            .map(Body)
            .map_err(|e| graph_error(s, StatusCode::BAD_REQUEST, "Request_BadRequest", &format!("Invalid request: {e}.")))
    }
}

/// 403 when the caller's permissions or roles do not reach.
fn insufficient_privileges(s: &TenantServer) -> Response {
    graph_error(s, StatusCode::FORBIDDEN, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

/// Graph's OData error, dated by the lab clock.
fn graph_error(s: &TenantServer, status: StatusCode, code: &str, message: &str) -> Response {
    let now = s.clock.now();
    let date = format!("{}T{:02}:{:02}:{:02}", now.date(), now.hour(), now.minute(), now.second());
    let (request, client) =
        REQUEST_IDS.try_with(|ids| ids.clone()).unwrap_or_else(|_| (Uuid::new_v4().to_string(), Uuid::new_v4().to_string()));
    let body = json!({ "error": { "code": code, "message": message, "innerError": {
        "date": date,
        "request-id": request,
        "client-request-id": client,
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

/// A Global Administrator's request body: the caller is checked first (Graph answers 401 or
/// 403 before it looks at a body), then the body.
fn admin_body<T>(s: &TenantServer, headers: &HeaderMap, body: Result<Body<T>, Response>) -> Result<T, Response> {
    global_admin(s, headers)?;
    body.map(|Body(b)| b)
}

/// The directory settings endpoints: a Global Administrator with a delegated token only
/// (Graph supports no application permission for them).
fn global_admin(s: &TenantServer, headers: &HeaderMap) -> Result<(), Response> {
    holds_role(s, headers, &[crate::roles::Role::GlobalAdministrator])
}

/// Password reset's on-premises integration: Microsoft's 2026 tutorials name the Hybrid
/// Identity Administrator for it (Entra ID > Password reset > On-premises integration); a
/// Global Administrator may as well.
fn hybrid_admin(s: &TenantServer, headers: &HeaderMap) -> Result<(), Response> {
    holds_role(s, headers, &[crate::roles::Role::GlobalAdministrator, crate::roles::Role::HybridIdentityAdministrator])
}

/// A request body, for a Global or Hybrid Identity Administrator: the caller checked first,
/// then the body read (so a stranger learns nothing from a body's errors).
fn hybrid_admin_body<T>(s: &TenantServer, headers: &HeaderMap, body: Result<Body<T>, Response>) -> Result<T, Response> {
    hybrid_admin(s, headers)?;
    body.map(|Body(p)| p)
}

/// A user (delegated token) holding one of `roles`.
fn holds_role(s: &TenantServer, headers: &HeaderMap, roles: &[crate::roles::Role]) -> Result<(), Response> {
    let c = caller(s, headers)?;
    let ok = match c {
        Caller::User { id, .. } => s.lock().user(&id).is_some_and(|u| roles.iter().any(|r| u.roles.contains(r))),
        Caller::App { .. } => false,
    };
    if ok { Ok(()) } else { Err(insufficient_privileges(s)) }
}

/// Whether a presented secret's SHA-256 is `kept`, comparing every byte whatever the first
/// difference (relay and queue credentials are kept as hashes).
fn credential_matches(kept: &[u8; 32], presented: &str) -> bool {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(presented.as_bytes()).into();
    kept.iter().zip(digest.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// One outbound link's WebSocket (an engine's relay, an agent's queue): what `outgoing`
/// holds goes out as JSON text; each text frame that comes in goes to `incoming`, whose
/// `Some` is sent straight back (a heartbeat's ack) and whose `Err` ends the link, as does
/// `current` turning false (the link replaced or offboarded) or either side closing.
async fn pump<Out: serde::Serialize>(
    socket: &mut axum::extract::ws::WebSocket,
    outgoing: &mut tokio::sync::mpsc::UnboundedReceiver<Out>,
    mut incoming: impl FnMut(&str) -> Result<Option<Out>, ()>,
    mut current: impl FnMut() -> bool,
) {
    use axum::extract::ws::Message;
    loop {
        let reply = tokio::select! {
            out = outgoing.recv() => match out {
                Some(msg) => Some(msg),
                None => break,
            },
            inc = socket.recv() => {
                let text = match inc {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => continue,
                    _ => break,
                };
                match incoming(&text) {
                    Ok(reply) => reply,
                    Err(()) => break,
                }
            }
        };
        if let Some(msg) = reply {
            let text = serde_json::to_string(&msg).unwrap_or_default();
            if socket.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
        if !current() {
            break;
        }
    }
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
