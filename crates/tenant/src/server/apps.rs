//! App registrations over Graph: `/applications` (redirect URIs by platform, the public
//! client flag, `addPassword`/`removePassword`) and `/servicePrincipals`, so a test registers
//! the app it tests. A Global Administrator or an app with Application.ReadWrite.All writes;
//! Application.Read.All (or Directory.Read.All) reads.

use super::*;
use crate::directory::{App, AppPassword, derived_id};

fn may_read(s: &TenantServer, c: &Caller) -> bool {
    match c {
        Caller::App { roles, .. } => roles.iter().any(|r| {
            matches!(r.as_str(), "Application.Read.All" | "Application.ReadWrite.All" | "Directory.Read.All" | "Directory.ReadWrite.All")
        }),
        Caller::User { .. } => may_write(s, c),
    }
}

fn may_write(s: &TenantServer, c: &Caller) -> bool {
    match c {
        Caller::App { roles, .. } => roles.iter().any(|r| r == "Application.ReadWrite.All"),
        Caller::User { id, .. } => s.lock().user(id).is_some_and(|u| u.roles.contains(&crate::roles::Role::GlobalAdministrator)),
    }
}

fn rfc3339(t: clock::OffsetDateTime) -> String {
    t.format(&clock::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn password_json(p: &AppPassword, secret_text: Option<&str>) -> Value {
    json!({
        "customKeyIdentifier": null,
        "displayName": p.display_name,
        "endDateTime": rfc3339(p.end),
        "hint": p.hint,
        "keyId": p.key_id.to_string(),
        "secretText": secret_text,
        "startDateTime": rfc3339(p.start),
    })
}

fn application_json(a: &App) -> Value {
    json!({
        "id": a.object_id.to_string(),
        "appId": a.client_id.to_string(),
        "displayName": a.display_name,
        "signInAudience": "AzureADMyOrg",
        "isFallbackPublicClient": a.is_fallback_public_client,
        "web": { "redirectUris": a.web_redirect_uris, "implicitGrantSettings": { "enableAccessTokenIssuance": false, "enableIdTokenIssuance": false } },
        "publicClient": { "redirectUris": a.public_redirect_uris },
        "spa": { "redirectUris": a.spa_redirect_uris },
        "passwordCredentials": a.passwords.iter().map(|p| password_json(p, None)).collect::<Vec<_>>(),
        "requiredResourceAccess": [],
    })
}

fn service_principal_json(a: &App, id: Uuid) -> Value {
    json!({
        "id": id.to_string(),
        "appId": a.client_id.to_string(),
        "appDisplayName": a.display_name,
        "displayName": a.display_name,
        "accountEnabled": true,
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMyOrg",
        "appRoles": [],
        "replyUrls": a.redirect_uris().collect::<Vec<_>>(),
    })
}

/// The redirect URIs of a platform in a body, checked as Entra checks them: absolute, https
/// (or http on localhost), no fragment, at most 256 of them, each at most 256 characters.
fn redirect_uris(body: &serde_json::Map<String, Value>, platform: &str) -> Result<Option<Vec<String>>, String> {
    let Some(p) = body.get(platform) else { return Ok(None) };
    let Some(list) = p.get("redirectUris") else { return Ok(Some(vec![])) };
    let Some(list) = list.as_array() else {
        return Err(format!("Invalid value specified for property 'redirectUris' of resource '{platform}'."));
    };
    if list.len() > 256 {
        return Err("The number of redirect URIs exceeds the limit of 256.".into());
    }
    let mut out = vec![];
    for u in list {
        let Some(u) = u.as_str() else { return Err("Invalid value specified for property 'redirectUris'.".into()) };
        let loopback = ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .iter()
            .any(|l| u == *l || u.starts_with(&format!("{l}:")) || u.starts_with(&format!("{l}/")));
        // a desktop or mobile app's own scheme (`myapp://auth`), never one a browser runs or reads
        let scheme = u.split_once(':').map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
        let custom = platform == "publicClient"
            && u.contains("://")
            && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !matches!(scheme.as_str(), "http" | "javascript" | "data" | "vbscript" | "file" | "blob" | "about");
        let scheme_ok = u.starts_with("https://") || loopback || custom;
        if !scheme_ok || u.contains('#') || u.len() > 256 {
            return Err(format!("Invalid value specified for property 'redirectUris' of resource '{platform}': '{u}'."));
        }
        out.push(u.to_string());
    }
    Ok(Some(out))
}

struct Edit {
    display_name: Option<String>,
    web: Option<Vec<String>>,
    public: Option<Vec<String>>,
    spa: Option<Vec<String>>,
    fallback: Option<bool>,
}

fn parse_edit(body: &serde_json::Map<String, Value>) -> Result<Edit, String> {
    const KNOWN: [&str; 7] =
        ["displayName", "web", "publicClient", "spa", "isFallbackPublicClient", "signInAudience", "requiredResourceAccess"];
    if let Some(k) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("Property '{k}' does not exist as a declared property or extension property."));
    }
    if let Some(a) = body.get("signInAudience").and_then(Value::as_str).filter(|a| *a != "AzureADMyOrg") {
        return Err(format!("The lab's tenant registers single-tenant apps only: signInAudience '{a}' is not modelled."));
    }
    let display_name = match body.get("displayName") {
        None => None,
        Some(Value::String(n)) if !n.trim().is_empty() && n.len() <= 256 => Some(n.clone()),
        Some(_) => return Err("Invalid value specified for property 'displayName' of resource 'Application'.".into()),
    };
    let fallback = match body.get("isFallbackPublicClient") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err("Invalid value specified for property 'isFallbackPublicClient' of resource 'Application'.".into()),
    };
    Ok(Edit {
        display_name,
        web: redirect_uris(body, "web")?,
        public: redirect_uris(body, "publicClient")?,
        spa: redirect_uris(body, "spa")?,
        fallback,
    })
}

fn apply(a: &mut App, e: Edit) {
    if let Some(n) = e.display_name {
        a.display_name = n;
    }
    if let Some(w) = e.web {
        a.web_redirect_uris = w;
    }
    if let Some(p) = e.public {
        a.public_redirect_uris = p;
    }
    if let Some(x) = e.spa {
        a.spa_redirect_uris = x;
    }
    if let Some(f) = e.fallback {
        a.is_fallback_public_client = f;
    }
}

fn writer(s: &TenantServer, headers: &HeaderMap) -> Result<(), Response> {
    let c = caller(s, headers)?;
    if may_write(s, &c) { Ok(()) } else { Err(insufficient_privileges(s)) }
}

fn reader(s: &TenantServer, headers: &HeaderMap) -> Result<(), Response> {
    let c = caller(s, headers)?;
    if may_read(s, &c) { Ok(()) } else { Err(insufficient_privileges(s)) }
}

/// The app a request names, once its caller may read it (or, with `write`, change it).
fn target(s: &TenantServer, headers: &HeaderMap, key: &str, write: bool) -> Result<Uuid, Response> {
    if write {
        writer(s, headers)?
    } else {
        reader(s, headers)?
    }
    app_id(s, key)
}

/// The app a path names: the application object's id.
fn app_id(s: &TenantServer, key: &str) -> Result<Uuid, Response> {
    let t = s.lock();
    Uuid::parse_str(key).ok().and_then(|id| t.apps().into_iter().find(|a| a.object_id == id).map(|a| a.client_id)).ok_or_else(|| {
        drop(t);
        no_such_resource(s, key)
    })
}

/// `POST /applications`: `displayName` required → `201` with the application and `Location`.
pub(super) async fn create_application(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = writer(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let edit = match parse_edit(&m) {
        Ok(e) if e.display_name.is_some() => e,
        Ok(_) => return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", "Property 'displayName' is required."),
        Err(msg) => return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &msg),
    };
    let mut t = s.lock();
    if t.quota_reached() {
        drop(t);
        return quota_exceeded(&s);
    }
    let id = t.register_app(edit.display_name.as_deref().unwrap_or_default());
    let a = t.app_mut(&id).expect("just registered");
    apply(a, edit);
    let body = application_json(a);
    let location = format!("{}/v1.0/applications/{}", s.https_base, a.object_id);
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response()
}

pub(super) async fn list_applications(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Err(r) = reader(&s, &headers) {
        return r;
    }
    let items: Vec<Value> = s.lock().apps().into_iter().map(application_json).collect();
    query::collection(&s, &headers, &q, items, &query::APPLICATIONS, "/v1.0/applications", "applications")
}

pub(super) async fn get_application(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let id = match target(&s, &headers, &key, false) {
        Ok(id) => id,
        Err(r) => return r,
    };
    Json(application_json(s.lock().app(&id).expect("found"))).into_response()
}

/// `PATCH /applications/{id}`: display name, redirect URIs, the public client flag → `204`.
pub(super) async fn patch_application(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let id = match target(&s, &headers, &key, true) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let edit = match parse_edit(&m) {
        Ok(e) => e,
        Err(msg) => return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &msg),
    };
    apply(s.lock().app_mut(&id).expect("found"), edit);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn delete_application(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let id = match target(&s, &headers, &key, true) {
        Ok(id) => id,
        Err(r) => return r,
    };
    s.lock().remove_app(&id);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /applications/{id}/addPassword {"passwordCredential": {"displayName", "endDateTime"}}`:
/// a new secret from the OS generator, its text answered this once (`secretText`); two
/// years unless asked otherwise.
pub(super) async fn add_password(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let id = match target(&s, &headers, &key, true) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let m = if body.is_empty() { Some(Default::default()) } else { body_json(&body) };
    let Some(m) = m else { return unreadable_json(&s) };
    let cred = m.get("passwordCredential").cloned().unwrap_or(json!({}));
    let now = s.clock.now();
    let end = match cred.get("endDateTime").and_then(Value::as_str) {
        Some(e) => match clock::OffsetDateTime::parse(e, &clock::format_description::well_known::Rfc3339) {
            Ok(t) if t > now => t,
            _ => {
                return graph_error(
                    &s,
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.",
                );
            }
        },
        None => now + std::time::Duration::from_secs(2 * 365 * 24 * 3600),
    };
    // Entra's secrets: 40 characters, a `~` in the fourth place
    let random = crate::authorize::secret(30).replace(['-', '_'], "A");
    let secret = format!("{}~{}", &random[..3], &random[3..39]);
    let mut t = s.lock();
    let key_id = derived_id(t.new_id(), "passwordCredential");
    let pw = AppPassword {
        key_id,
        display_name: cred.get("displayName").and_then(Value::as_str).map(|d| d.chars().take(256).collect()),
        hint: secret[..3].to_string(),
        credential: crate::passwords::Credential::from_password(&secret, &mut rand::rngs::OsRng),
        start: now,
        end,
    };
    let body = password_json(&pw, Some(&secret));
    let app = t.app_mut(&id).expect("found");
    if app.passwords.len() >= 16 {
        drop(t);
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "An application may hold at most 16 password credentials in the lab.",
        );
    }
    app.passwords.push(pw);
    Json(body).into_response()
}

/// `POST /applications/{id}/removePassword {"keyId"}` → `204`.
pub(super) async fn remove_password(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let id = match target(&s, &headers, &key, true) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(key_id) = body_json(&body).and_then(|m| m.get("keyId").and_then(Value::as_str).and_then(|k| Uuid::parse_str(k).ok())) else {
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", "Invalid value specified for property 'keyId'.");
    };
    let mut t = s.lock();
    let app = t.app_mut(&id).expect("found");
    let before = app.passwords.len();
    app.passwords.retain(|p| p.key_id != key_id);
    if app.passwords.len() == before {
        drop(t);
        return no_such_resource(&s, &key_id.to_string());
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /servicePrincipals {"appId"}` → `201`; one per app (a second: `409`).
pub(super) async fn create_service_principal(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = writer(&s, &headers) {
        return r;
    }
    let Some(app_id) = body_json(&body).and_then(|m| m.get("appId").and_then(Value::as_str).and_then(|k| Uuid::parse_str(k).ok())) else {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid value specified for property 'appId' of resource 'ServicePrincipal'.",
        );
    };
    let mut t = s.lock();
    let Some(app) = t.app_mut(&app_id) else {
        drop(t);
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("The appId '{app_id}' of the service principal does not reference a valid application object."),
        );
    };
    if app.service_principal.is_some() {
        drop(t);
        return graph_error(
            &s,
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "The service principal cannot be created, updated, or restored because the service principal name is already in use.",
        );
    }
    let id = derived_id(app_id, "servicePrincipal");
    app.service_principal = Some(id);
    let body = service_principal_json(app, id);
    let location = format!("{}/v1.0/servicePrincipals/{id}", s.https_base);
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response()
}

fn service_principals(t: &Tenant) -> Vec<Value> {
    t.apps().into_iter().filter_map(|a| a.service_principal.map(|id| service_principal_json(a, id))).collect()
}

pub(super) async fn list_service_principals(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = reader(&s, &headers) {
        return r;
    }
    let items = service_principals(&s.lock());
    query::collection(&s, &headers, &q, items, &query::SERVICE_PRINCIPALS, "/v1.0/servicePrincipals", "servicePrincipals")
}

pub(super) async fn get_service_principal(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    if let Err(r) = reader(&s, &headers) {
        return r;
    }
    let found = service_principals(&s.lock()).into_iter().find(|sp| sp["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&key)));
    match found {
        Some(sp) => Json(sp).into_response(),
        None => no_such_resource(&s, &key),
    }
}

pub(super) async fn delete_service_principal(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    if let Err(r) = writer(&s, &headers) {
        return r;
    }
    let mut t = s.lock();
    let Some(client) =
        t.apps().into_iter().find(|a| a.service_principal.is_some_and(|sp| sp.to_string().eq_ignore_ascii_case(&key))).map(|a| a.client_id)
    else {
        drop(t);
        return no_such_resource(&s, &key);
    };
    t.app_mut(&client).expect("found").service_principal = None;
    StatusCode::NO_CONTENT.into_response()
}
