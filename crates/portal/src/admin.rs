//! The administrator's pages, after the Entra admin center: users (cloud-only or synced,
//! roles, risk) with the password reset, the SSPR blade's properties, "On-premises
//! integration", and the directory audit log. An administrator signs in once; the page keeps
//! their access token server-side behind an HttpOnly, SameSite=Strict session cookie and calls
//! Graph (and the tenant's `/lab/sspr/…` settings) with it — the same rights checks as any
//! Graph client.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Shared, api_error, render, render_status};

/// Graph's fixed id of a user's password authentication method.
const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

/// Entra's built-in role template ids the lab assigns, by name.
const ROLES: &[(&str, &str)] = &[
    ("62e90394-69f5-4237-9190-012177145e10", "Global Administrator"),
    ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator"),
    ("966707d0-3269-4727-9be2-8c3a10f19b9d", "Password Administrator"),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    ("7be44c8a-adaf-4e2a-84d6-ab2649e08a13", "Privileged Authentication Administrator"),
    ("c4e39bd9-1100-46d3-8c65-fb160da0071f", "Authentication Administrator"),
    ("194ae4cb-b126-40b2-bd5b-6091b380977d", "Security Administrator"),
];

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/portal/admin", get(users))
        .route("/portal/admin/signin", get(signin_page).post(signin))
        .route("/portal/admin/signout", post(signout))
        .route("/portal/admin/users/{id}", get(user))
        .route("/portal/admin/users/{id}/reset", post(reset))
        .route("/portal/admin/sspr", get(sspr).post(sspr_save))
        .route("/portal/admin/onprem", get(onprem).post(onprem_save))
        .route("/portal/admin/audit", get(audit))
        .route("/portal/admin/signins", get(sign_ins))
        .route("/portal/admin/connect", get(connect_blade))
        .route("/portal/admin/protection", get(protection).post(protection_save))
}

/// The administrator's (name, token), or the admin sign-in page.
/// (Its token renewed first when the lab clock has moved past its lifetime.)
macro_rules! signed_in {
    // (name, token) of a signed-in holder of one of `roles` (role template ids), or the
    // sign-in page saying why (403)
    ($p:expr, $headers:expr, $back:expr, $roles:expr) => {{
        let (user, token) = crate::admin::signed_in!($p, $headers, $back);
        if !crate::admin::holds_one_of(&token, $roles) {
            return crate::admin::not_permitted(&user, $back);
        }
        (user, token)
    }};
    ($p:expr, $headers:expr) => {{
        let (user, token) = crate::session::signed_in!($p.admins, $headers, "/portal/admin/signin");
        (user, $p.fresh_admin_token(&$headers, token).await)
    }};
    ($p:expr, $headers:expr, $back:expr) => {{
        let (user, token) = crate::session::signed_in!($p.admins, $headers, concat!("/portal/admin/signin?next=", $back));
        (user, $p.fresh_admin_token(&$headers, token).await)
    }};
}
pub(crate) use signed_in;

/// Role template ids, as tokens carry them in `wids` (Microsoft's, the same in every tenant).
pub(crate) const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
pub(crate) const HYBRID_IDENTITY_ADMINISTRATOR: &str = "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2";

/// Whether a token carries one of `roles` in its `wids`. The portal had the token from the
/// tenant's token endpoint itself, over TLS: its claims are the tenant's word, and the
/// tenant still judges every call made with it. (Any tenant user may sign in to the admin
/// center, as in Entra; the lab's own pages and slots are its administrator's.)
pub(crate) fn holds_one_of(token: &str, roles: &[&str]) -> bool {
    #[derive(Deserialize)]
    struct Wids {
        #[serde(default)]
        wids: Vec<String>,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Wids>(token).is_ok_and(|c| c.wids.iter().any(|w| roles.contains(&w.as_str())))
}

/// The sign-in page, 403: the signed-in user lacks the page's role.
pub(crate) fn not_permitted(user: &str, back: &str) -> Response {
    let error = format!(
        "{user} is signed in, but this page needs the lab tenant's Global Administrator (or, for Entra Connect, a Hybrid Identity Administrator). Sign in as one."
    );
    render_status(StatusCode::FORBIDDEN, &SignInPage { error: Some(error), user: String::new(), next: next_page(Some(back)) })
}

#[derive(Template)]
#[template(path = "admin_signin.html")]
struct SignInPage {
    error: Option<String>,
    user: String,
    /// Where to go once signed in (a page under /portal).
    next: String,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only the portal's own pages: a `next` elsewhere would make the sign-in an open redirect.
fn next_page(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with("/portal/") && !n.starts_with("//") && !n.contains('\\')).unwrap_or("/portal/admin").to_string()
}

async fn signin_page(axum::extract::Query(q): axum::extract::Query<NextQuery>) -> Response {
    render(&SignInPage { error: None, user: String::new(), next: next_page(q.next.as_deref()) })
}

#[derive(Deserialize)]
struct SignInForm {
    user: String,
    password: String,
    next: Option<String>,
}

async fn signin(State(p): State<Shared>, Form(f): Form<SignInForm>) -> Response {
    let user = f.user.trim().to_string();
    let next = next_page(f.next.as_deref());
    let (status, body) = p.token(&user, &f.password).await;
    let Some(token) = body["access_token"].as_str().filter(|_| status == 200) else {
        let message = body["error_description"].as_str().unwrap_or("Sign-in failed.").lines().next().unwrap_or_default().to_string();
        return render_status(StatusCode::UNAUTHORIZED, &SignInPage { error: Some(message), user, next });
    };
    ([(header::SET_COOKIE, p.admins.start_renewable(&user, token, Some(&f.password)))], Redirect::to(&next)).into_response()
}

async fn signout(State(p): State<Shared>, headers: HeaderMap) -> Response {
    ([(header::SET_COOKIE, p.admins.end(&headers))], Redirect::to("/portal/admin/signin")).into_response()
}

pub(crate) struct UserRow {
    pub id: String,
    pub upn: String,
    pub name: String,
    pub synced: bool,
    pub enabled: bool,
    pub roles: Vec<String>,
    pub risk: String,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    admin: String,
    users: Vec<UserRow>,
}

/// Users, with their roles (from role assignments) and risk (from riskyUsers).
async fn user_rows(p: &crate::Portal, token: &str) -> Result<Vec<UserRow>, (u16, Value)> {
    let (status, users) = p
        .api(Method::GET, "/v1.0/users?$select=id,userPrincipalName,displayName,onPremisesSyncEnabled,accountEnabled", Some(token), None)
        .await;
    if status != 200 {
        return Err((status, users));
    }
    let (_, assignments) = p.api(Method::GET, "/v1.0/roleManagement/directory/roleAssignments", Some(token), None).await;
    let (_, risky) = p.api(Method::GET, "/v1.0/identityProtection/riskyUsers", Some(token), None).await;
    let mut roles: HashMap<String, Vec<String>> = HashMap::new();
    for a in assignments["value"].as_array().into_iter().flatten() {
        let def = a["roleDefinitionId"].as_str().unwrap_or_default();
        let name = ROLES.iter().find(|(id, _)| *id == def).map(|(_, n)| n.to_string()).unwrap_or_else(|| def.to_string());
        roles.entry(a["principalId"].as_str().unwrap_or_default().to_string()).or_default().push(name);
    }
    let risk: HashMap<String, String> = risky["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["id"].as_str().unwrap_or_default().to_string(), r["riskLevel"].as_str().unwrap_or("none").to_string()))
        .collect();
    let mut rows: Vec<UserRow> = users["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            let id = u["id"].as_str().unwrap_or_default().to_string();
            UserRow {
                upn: u["userPrincipalName"].as_str().unwrap_or_default().to_string(),
                name: u["displayName"].as_str().unwrap_or_default().to_string(),
                synced: u["onPremisesSyncEnabled"].as_bool().unwrap_or(false),
                enabled: u["accountEnabled"].as_bool().unwrap_or(true),
                roles: roles.remove(&id).unwrap_or_default(),
                risk: risk.get(&id).cloned().unwrap_or_else(|| "none".into()),
                id,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.upn.cmp(&b.upn));
    Ok(rows)
}

fn graph_failure(status: u16, body: &Value) -> Response {
    let (code, message) = api_error(body);
    let page = crate::pages::SsprErrorPage { code, message, support_code: "-".into() };
    render_status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY), &page)
}

async fn users(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin");
    match user_rows(&p, &token).await {
        Ok(users) => render(&UsersPage { admin, users }),
        Err((status, body)) => graph_failure(status, &body),
    }
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    admin: String,
    user: UserRow,
    /// The sync side's ForcePasswordChangeOnLogOn: a written-back reset asks AD for a change too.
    force_change_on_logon: bool,
    /// What the last reset did.
    result: Option<ResetResult>,
    error: Option<String>,
    /// AD's reason in plain words when on-premises refused a written-back reset: the lab's
    /// own note, beside Entra's answer (which never says it).
    lab_note: Option<String>,
}

pub(crate) struct ResetResult {
    pub message: String,
}

/// The tenant's `userForcePasswordChangeOnLogonEnabled` sync feature.
async fn force_change_on_logon(p: &crate::Portal, token: &str) -> bool {
    let (_, v) = p.api(Method::GET, "/v1.0/directory/onPremisesSynchronization", Some(token), None).await;
    v["value"][0]["features"]["userForcePasswordChangeOnLogonEnabled"].as_bool().unwrap_or(false)
}

async fn find_user(p: &crate::Portal, token: &str, id: &str) -> Result<UserRow, Response> {
    match user_rows(p, token).await {
        Ok(rows) => rows.into_iter().find(|u| u.id == id || u.upn.eq_ignore_ascii_case(id)).ok_or_else(|| {
            graph_failure(404, &json!({ "error": { "code": "Request_ResourceNotFound", "message": format!("No user {id}.") } }))
        }),
        Err((status, body)) => Err(graph_failure(status, &body)),
    }
}

async fn user(State(p): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (admin, token) = signed_in!(p, headers);
    let force_change_on_logon = force_change_on_logon(&p, &token).await;
    match find_user(&p, &token, &id).await {
        Ok(user) => render(&UserPage { admin, user, force_change_on_logon, result: None, error: None, lab_note: None }),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ResetForm {
    new_password: Option<String>,
    force_change: Option<String>,
}

/// The admin center's "Reset password". A synced user's reset is the Graph reset method, which
/// writes back through the engine (Entra makes it a temporary password: change at next
/// sign-in); a cloud user's is the password profile, with or without a forced change.
async fn reset(State(p): State<Shared>, headers: HeaderMap, Path(id): Path<String>, Form(f): Form<ResetForm>) -> Response {
    let (admin, token) = signed_in!(p, headers);
    let user = match find_user(&p, &token, &id).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let given = f.new_password.filter(|x| !x.is_empty());
    let force = f.force_change.is_some();
    let force_change_on_logon = force_change_on_logon(&p, &token).await;
    let page = |user, result, error| render(&UserPage { admin: admin.clone(), user, force_change_on_logon, result, error, lab_note: None });
    if user.synced {
        let path = format!("/v1.0/users/{}/authentication/methods/{PASSWORD_METHOD_ID}/resetPassword", user.id);
        let body = given.as_ref().map(|x| json!({ "newPassword": x }));
        let mut rq = p.http().post(format!("{}{path}", p.cfg.api)).bearer_auth(&token);
        if let Some(b) = body {
            rq = rq.json(&b);
        }
        // the engine's log before the reset: what it logs after is this reset's
        let logged_before = engine_events(&p, &token).await.len();
        let Ok(r) = rq.send().await else { return page(user, None, Some("The tenant did not answer.".into())) };
        let location = r.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let status = r.status().as_u16();
        // (a password the tenant generated would be in the body: never shown, see docs/portal.md)
        let accepted: Value = r.json().await.unwrap_or(Value::Null);
        if status != 202 {
            return page(user, None, Some(api_error(&accepted).1));
        }
        // the operation ends when on-premises has answered: read it as Graph clients do
        let op_path = location.as_deref().and_then(|l| l.find("/v1.0/").map(|i| l[i..].to_string())).unwrap_or_default();
        let (_, op) = p.api(Method::GET, &op_path, Some(&token), None).await;
        let detail = op["statusDetail"].as_str().unwrap_or_default();
        if op["status"].as_str() != Some("succeeded") {
            let why = if detail.is_empty() { "the on-premises directory refused it".to_string() } else { detail.to_string() };
            let lab_note = engine_events(&p, &token).await.iter().skip(logged_before).rev().find_map(|e| lab_note(e["message"].as_str()?));
            let error = Some(format!("The password could not be reset: {why}."));
            return render(&UserPage { admin: admin.clone(), user, force_change_on_logon, result: None, error, lab_note });
        }
        return page(
            user,
            Some(ResetResult {
                message: if force_change_on_logon {
                    "The password was reset and written back to your on-premises directory. The user must change it at next sign-in."
                } else {
                    "The password was reset and written back to your on-premises directory."
                }
                .into(),
            }),
            None,
        );
    }
    let Some(password) = given else {
        return page(user, None, Some("Enter a temporary password for a cloud-only user.".into()));
    };
    let body = json!({ "passwordProfile": { "password": password, "forceChangePasswordNextSignIn": force } });
    let (status, answer) = p.api(Method::PATCH, &format!("/v1.0/users/{}", user.id), Some(&token), Some(body)).await;
    if status != 204 {
        return page(user, None, Some(api_error(&answer).1));
    }
    let message = if force {
        "The password was reset. The user must change it at next sign-in."
    } else {
        "The password was reset. The user keeps it (no change required at next sign-in)."
    };
    page(user, Some(ResetResult { message: message.into() }), None)
}

/// The writeback engine's event log (empty when the lab runs none).
async fn engine_events(p: &crate::Portal, token: &str) -> Vec<Value> {
    let (_, v) = p.api(Method::GET, "/lab/engine/events", Some(token), None).await;
    v["value"].as_array().cloned().unwrap_or_default()
}

/// The `[lab note: …]` an engine event carries (AD's reason in plain words).
fn lab_note(message: &str) -> Option<String> {
    let start = message.find("[lab note: ")? + "[lab note: ".len();
    let end = message[start..].rfind(']')? + start;
    Some(message[start..end].to_string())
}

#[derive(Template)]
#[template(path = "admin_sspr.html")]
struct SsprPage {
    admin: String,
    enabled: String,
    group: String,
    groups: Vec<(String, String)>,
    methods_required: u64,
    email: bool,
    mobile_phone: bool,
    notify_users: bool,
    notify_admins: bool,
    saved: bool,
    error: Option<String>,
}

async fn sspr_page(p: &crate::Portal, admin: String, token: &str, saved: bool, error: Option<String>) -> Response {
    let (status, v) = p.api(Method::GET, "/lab/sspr/policy", Some(token), None).await;
    if status != 200 {
        return graph_failure(status, &v);
    }
    let (_, groups) = p.api(Method::GET, "/v1.0/groups", Some(token), None).await;
    let groups = groups["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| (g["id"].as_str().unwrap_or_default().to_string(), g["displayName"].as_str().unwrap_or_default().to_string()))
        .collect();
    render(&SsprPage {
        admin,
        enabled: v["enabled"].as_str().unwrap_or("None").to_string(),
        group: v["selectedGroupId"].as_str().unwrap_or_default().to_string(),
        groups,
        methods_required: v["methodsRequired"].as_u64().unwrap_or(1),
        email: v["emailEnabled"].as_bool().unwrap_or(false),
        mobile_phone: v["mobilePhoneEnabled"].as_bool().unwrap_or(false),
        notify_users: v["notifyUsersOnPasswordReset"].as_bool().unwrap_or(false),
        notify_admins: v["notifyAdminsOnAdminReset"].as_bool().unwrap_or(false),
        saved,
        error,
    })
}

async fn sspr(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/sspr");
    sspr_page(&p, admin, &token, false, None).await
}

#[derive(Deserialize)]
struct SsprForm {
    enabled: String,
    group: Option<String>,
    methods_required: u64,
    email: Option<String>,
    mobile_phone: Option<String>,
    notify_users: Option<String>,
    notify_admins: Option<String>,
}

async fn sspr_save(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<SsprForm>) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/sspr");
    let mut body = json!({
        "enabled": f.enabled,
        "methodsRequired": f.methods_required,
        "emailEnabled": f.email.is_some(),
        "mobilePhoneEnabled": f.mobile_phone.is_some(),
        "notifyUsersOnPasswordReset": f.notify_users.is_some(),
        "notifyAdminsOnAdminReset": f.notify_admins.is_some(),
    });
    if f.enabled == "Selected" {
        body["selectedGroupId"] = json!(f.group.unwrap_or_default());
    }
    let (status, answer) = p.api(Method::PATCH, "/lab/sspr/policy", Some(&token), Some(body)).await;
    let error = (!(200..300).contains(&status)).then(|| api_error(&answer).1);
    sspr_page(&p, admin, &token, error.is_none(), error).await
}

#[derive(Template)]
#[template(path = "admin_onprem.html")]
struct OnPremPage {
    admin: String,
    write_back: bool,
    /// "Write back passwords with Microsoft Entra Connect cloud sync", shown only when a
    /// provisioning agent is registered.
    cloud_sync_agents: bool,
    cloud_sync: bool,
    allow_unlock: bool,
    /// The writeback client's status line, in the admin center's words.
    status: String,
    client_up: bool,
    saved: bool,
    error: Option<String>,
}

/// The writeback client as the admin center judges it: up (Connect's engine connected and
/// onboarded for writeback, or Cloud Sync's agent connected with its writeback checked), and
/// its status line in the admin center's words. The dashboard says the same.
pub(crate) async fn writeback_client(p: &crate::Portal, token: &str) -> (bool, &'static str) {
    let (_, engines) = p.api(Method::GET, "/lab/writeback/engines", Some(token), None).await;
    let engines = engines["value"].as_array().cloned().unwrap_or_default();
    let connected = |kind: &str| engines.iter().any(|e| e["agentKind"] == kind && e["connected"].as_bool() == Some(true));
    // Connect's client counts as configured only once its wizard onboarded it for writeback;
    // Cloud Sync's once its checkbox (or Set-AADCloudSyncPasswordWritebackConfiguration) is on
    let sync = format!("/v1.0/directory/onPremisesSynchronization/{}", p.cfg.tenant_id);
    let (_, sync) = p.api(Method::GET, &sync, Some(token), None).await;
    let (_, integration) = p.api(Method::GET, "/lab/sspr/onPremisesIntegration", Some(token), None).await;
    let connect = sync["features"]["passwordWritebackEnabled"].as_bool().unwrap_or(false);
    let cloud_sync = integration["writeBackWithCloudSync"].as_bool().unwrap_or(false);
    let onboarded = connect || cloud_sync;
    let client_up = (connected("ConnectSync") && connect) || (connected("CloudSync") && cloud_sync);
    let status = if client_up {
        "Your on-premises writeback client is up and running."
    } else if engines.is_empty() || !onboarded {
        "Your on-premises writeback client is not properly configured: enable Password writeback in Microsoft Entra Connect's configuration wizard (Optional features)."
    } else {
        "Your on-premises writeback client can't connect right now."
    };
    (client_up, status)
}

async fn onprem_page(p: &crate::Portal, admin: String, token: &str, saved: bool, error: Option<String>) -> Response {
    let (status, v) = p.api(Method::GET, "/lab/sspr/onPremisesIntegration", Some(token), None).await;
    if status != 200 {
        return graph_failure(status, &v);
    }
    let (client_up, status) = writeback_client(p, token).await;
    render(&OnPremPage {
        admin,
        write_back: v["writeBackPasswords"].as_bool().unwrap_or(false),
        cloud_sync_agents: v["cloudSyncAgentRegistered"].as_bool().unwrap_or(false),
        cloud_sync: v["writeBackWithCloudSync"].as_bool().unwrap_or(false),
        allow_unlock: v["allowUnlockWithoutReset"].as_bool().unwrap_or(false),
        status: status.into(),
        client_up,
        saved,
        error,
    })
}

async fn onprem(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/onprem");
    onprem_page(&p, admin, &token, false, None).await
}

/// The blade's checkboxes: a checked one is sent, an unchecked one is not.
#[derive(Deserialize)]
struct OnPremForm {
    write_back: Option<String>,
    cloud_sync: Option<String>,
    /// The page showed Cloud Sync's checkbox (a provisioning agent was registered then).
    cloud_sync_shown: Option<String>,
    allow_unlock: Option<String>,
}

async fn onprem_save(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<OnPremForm>) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/onprem");
    let yes = |v: &Option<String>| v.as_deref() == Some("yes");
    let mut body = json!({ "writeBackPasswords": yes(&f.write_back), "allowUnlockWithoutReset": yes(&f.allow_unlock) });
    // Cloud Sync's box counts only where the page showed it (the tenant refuses it checked
    // with no provisioning agent registered: the admin center's error)
    if yes(&f.cloud_sync_shown) || yes(&f.cloud_sync) {
        body["writeBackWithCloudSync"] = json!(yes(&f.cloud_sync));
    }
    let (status, answer) = p.api(Method::PATCH, "/lab/sspr/onPremisesIntegration", Some(&token), Some(body)).await;
    let error = (!(200..300).contains(&status)).then(|| api_error(&answer).1);
    onprem_page(&p, admin, &token, error.is_none(), error).await
}

pub(crate) struct AuditRow {
    pub time: String,
    pub activity: String,
    pub result: String,
    pub reason: String,
    pub target: String,
    pub initiated_by: String,
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    admin: String,
    entries: Vec<AuditRow>,
}

async fn audit(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/audit");
    let (status, v) = p.api(Method::GET, "/v1.0/auditLogs/directoryAudits", Some(&token), None).await;
    if status != 200 {
        return graph_failure(status, &v);
    }
    let entries = v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| AuditRow {
            time: e["activityDateTime"].as_str().unwrap_or_default().to_string(),
            activity: e["activityDisplayName"].as_str().unwrap_or_default().to_string(),
            result: e["result"].as_str().unwrap_or_default().to_string(),
            reason: e["resultReason"].as_str().unwrap_or_default().to_string(),
            target: e["targetResources"][0]["userPrincipalName"].as_str().unwrap_or_default().to_string(),
            initiated_by: e["initiatedBy"]["user"]["userPrincipalName"]
                .as_str()
                .or(e["initiatedBy"]["app"]["displayName"].as_str())
                .unwrap_or_default()
                .to_string(),
        })
        .collect();
    render(&AuditPage { admin, entries })
}

pub(crate) struct SignInRow {
    pub time: String,
    pub user: String,
    pub app: String,
    pub code: u64,
    pub reason: String,
    pub method: String,
    pub agent: String,
}

#[derive(Template)]
#[template(path = "admin_signins.html")]
struct SignInsPage {
    admin: String,
    entries: Vec<SignInRow>,
}

/// Monitoring & health › Sign-in logs: Graph's auditLogs/signIns, newest first.
async fn sign_ins(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/signins");
    let (status, v) = p.api(Method::GET, "/v1.0/auditLogs/signIns?$top=200", Some(&token), None).await;
    if status != 200 {
        return graph_failure(status, &v);
    }
    let entries = v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| SignInRow {
            time: e["createdDateTime"].as_str().unwrap_or_default().to_string(),
            user: e["userPrincipalName"].as_str().unwrap_or_default().to_string(),
            app: e["appDisplayName"].as_str().unwrap_or_default().to_string(),
            code: e["status"]["errorCode"].as_u64().unwrap_or(0),
            reason: e["status"]["failureReason"].as_str().unwrap_or_default().to_string(),
            method: e["authenticationDetails"][0]["authenticationMethodDetail"].as_str().unwrap_or_default().to_string(),
            agent: e["authenticationProcessingDetails"][0]["value"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    render(&SignInsPage { admin, entries })
}

#[derive(Template)]
#[template(path = "admin_connect.html")]
struct ConnectBlade {
    admin: String,
    hash_sync: bool,
    pta: bool,
    /// (machine name, id, Active)
    agents: Vec<(String, String, bool)>,
}

/// Entra ID › Entra Connect › Connect Sync: the sign-in methods and, under pass-through
/// authentication, the agents with Active / Inactive, as the blade lists them.
async fn connect_blade(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/connect");
    let (status, v) = p.api(Method::GET, "/lab/pta", Some(&token), None).await;
    if status != 200 {
        return graph_failure(status, &v);
    }
    let sync = format!("/v1.0/directory/onPremisesSynchronization/{}", p.cfg.tenant_id);
    let (_, sync) = p.api(Method::GET, &sync, Some(&token), None).await;
    let agents = v["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("machineName"), s("id"), a["status"] == "active")
        })
        .collect();
    render(&ConnectBlade {
        admin,
        hash_sync: sync["features"]["passwordSyncEnabled"].as_bool().unwrap_or(false),
        pta: v["enabled"].as_bool().unwrap_or(false),
        agents,
    })
}

/// Password Rule Settings' template (Microsoft's id, the same in every tenant).
const PASSWORD_RULE_SETTINGS_TEMPLATE: &str = "5cf42378-d67d-4f36-ba46-e8b86229381d";

#[derive(Template)]
#[template(path = "admin_protection.html")]
struct ProtectionPage {
    admin: String,
    threshold: u32,
    duration: u32,
    saved: bool,
    error: Option<String>,
}

/// Entra ID › Authentication methods › Password protection: smart lockout's threshold and
/// duration (the Password Rule Settings directory setting, through Graph).
async fn protection(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/protection");
    protection_page(&p, admin, &token, false, None).await
}

async fn protection_page(p: &crate::Portal, admin: String, token: &str, saved: bool, error: Option<String>) -> Response {
    let (status, v) = p.api(Method::GET, "/v1.0/groupSettings", Some(token), None).await;
    if status != 200 {
        return graph_failure(status, &v);
    }
    let (threshold, duration) = crate::exercise::smart_lockout(&v);
    render(&ProtectionPage { admin, threshold, duration, saved, error })
}

#[derive(Deserialize)]
struct ProtectionForm {
    threshold: String,
    duration: String,
}

async fn protection_save(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<ProtectionForm>) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/protection");
    let values = json!([
        { "name": "LockoutThreshold", "value": f.threshold.trim() },
        { "name": "LockoutDurationInSeconds", "value": f.duration.trim() },
    ]);
    let (_, v) = p.api(Method::GET, "/v1.0/groupSettings", Some(&token), None).await;
    let existing =
        v["value"].as_array().into_iter().flatten().find(|s| s["displayName"] == "Password Rule Settings").and_then(|s| s["id"].as_str());
    let (status, answer) = match existing {
        Some(id) => p.api(Method::PATCH, &format!("/v1.0/groupSettings/{id}"), Some(&token), Some(json!({ "values": values }))).await,
        None => {
            let body = json!({ "templateId": PASSWORD_RULE_SETTINGS_TEMPLATE, "values": values });
            p.api(Method::POST, "/v1.0/groupSettings", Some(&token), Some(body)).await
        }
    };
    let error = (!(200..300).contains(&status)).then(|| api_error(&answer).1);
    protection_page(&p, admin, &token, error.is_none(), error).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lab_note_is_read_from_an_engine_event() {
        let m =
            "hr=80230619, message=A constraint violation occurred. [lab note: the password is in the last 24 passwords (pwdHistoryLength)]";
        assert_eq!(super::lab_note(m).as_deref(), Some("the password is in the last 24 passwords (pwdHistoryLength)"));
        assert_eq!(super::lab_note("31002 PasswordResetSuccess"), None);
    }
}
