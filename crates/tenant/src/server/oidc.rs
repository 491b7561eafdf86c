//! OpenID Connect for the tenant: discovery, JWKS, the user realm MSAL asks first, and the
//! v2.0 token endpoint (password, client-credentials and refresh grants).

use super::*;
use crate::signins::SignInMethod;

pub(super) fn check_tenant(s: &TenantServer, tenant: &str) -> Result<Uuid, Response> {
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

pub(super) async fn openid_configuration(State(s): State<Shared>, headers: HeaderMap, Path(tenant): Path<String>) -> Response {
    let tid = match check_tenant(&s, &tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    // the endpoints under the name the client used; the issuer is the lab's one name
    let b = &s.base_for(&headers);
    let issuer = &s.https_base;
    Json(json!({
        "token_endpoint": format!("{b}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{issuer}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "preferred_username", "tid", "ver", "sid", "uti", "nonce"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }))
    .into_response()
}

pub(super) async fn jwks(State(s): State<Shared>, Path(tenant): Path<String>) -> Response {
    let tid = match check_tenant(&s, &tenant) {
        Ok(t) => t,
        Err(r) => return r,
    };
    Json(s.signer.published_jwks(&format!("{}/{tid}/v2.0", s.https_base))).into_response()
}

/// `GET`/`POST /oidc/userinfo` (Graph's host in Entra): the signed-in user as OpenID
/// Connect's UserInfo answers — `sub` (the id token's), `name`, `given_name`, `family_name`,
/// `email`, `picture` — for a user's access token; an app's token or none is Graph's 401.
pub(super) async fn userinfo(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let id = match caller(&s, &headers) {
        Ok(Caller::User { id, .. }) => id,
        Ok(Caller::App { .. }) => {
            let msg = "UserInfo needs a user's token (an app's token names no user).";
            return graph_error(&s, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", msg);
        }
        Err(r) => return r,
    };
    let t = s.lock();
    let Some(u) = t.user(&id) else {
        drop(t);
        return graph_error(&s, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "The token's user does not exist.");
    };
    Json(json!({
        "sub": id.to_string(),
        "name": u.display_name,
        "given_name": u.given_name,
        "family_name": u.surname,
        "email": u.mail,
        "picture": "https://graph.microsoft.com/v1.0/me/photo/$value",
    }))
    .into_response()
}

/// MSAL's username/password flow asks this first: a managed (not federated) account.
pub(super) async fn user_realm(State(s): State<Shared>, Path(upn): Path<String>) -> Response {
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
pub(super) fn response_scope(requested: &str, granted: &str) -> String {
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
pub(super) const GRAPH_RESOURCES: [&str; 2] = ["https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"];

/// Microsoft Graph delegated permissions that exist (the common ones), beyond those the lab's
/// client holds: asked for, they are refused as not consented (AADSTS65001); a name that is
/// in neither list is no Graph permission at all (AADSTS650053).
const OTHER_GRAPH_PERMISSIONS: &[&str] = &[
    "AuditLog.Read.All",
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Chat.Read",
    "Chat.ReadWrite",
    "ChannelMessage.Send",
    "Contacts.Read",
    "Contacts.ReadWrite",
    "Device.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Files.Read",
    "Files.Read.All",
    "Files.ReadWrite",
    "Files.ReadWrite.All",
    "Group.Read.All",
    "GroupMember.Read.All",
    "IdentityRiskEvent.Read.All",
    "IdentityRiskyUser.Read.All",
    "Mail.Read",
    "Mail.ReadBasic",
    "Mail.ReadWrite",
    "Mail.Send",
    "MailboxSettings.Read",
    "MailboxSettings.ReadWrite",
    "Notes.Read",
    "Notes.ReadWrite",
    "OnlineMeetings.Read",
    "People.Read",
    "Policy.Read.All",
    "Policy.ReadWrite.AuthenticationMethod",
    "Presence.Read",
    "Reports.Read.All",
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "Sites.Read.All",
    "Sites.ReadWrite.All",
    "Tasks.Read",
    "Tasks.ReadWrite",
    "Team.ReadBasic.All",
    "TeamMember.Read.All",
    "User.Read.All",
    "User.ReadWrite",
    "UserAuthenticationMethod.Read",
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite",
];

/// Why a delegated token request's scopes are refused (the request itself, before any
/// sign-in, for `Invalid`; the app's consent, after it, for the others).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ScopeRefusal {
    /// AADSTS70011: not a scope of any resource the tenant knows, or not a scope's form.
    Invalid(String),
    /// AADSTS650053: Graph has no such permission.
    NotOnGraph(String),
    /// AADSTS65001: a Graph permission the app holds no consent for.
    NotConsented,
}

/// Checks a delegated request's `scope` (password and refresh-token grants): the OpenID
/// Connect scopes, Graph's `.default`, the permissions the lab's client holds (bare or as
/// `https://graph.microsoft.com/…`) pass.
pub(super) fn check_delegated_scopes(scope: &str) -> Result<(), ScopeRefusal> {
    const OIDC: [&str; 4] = ["openid", "profile", "email", "offline_access"];
    let mut worst = None;
    for s in scope.split_whitespace() {
        if OIDC.iter().any(|o| o.eq_ignore_ascii_case(s)) {
            continue;
        }
        let name = match s.rsplit_once('/') {
            Some((resource, name)) if GRAPH_RESOURCES.iter().any(|g| g.eq_ignore_ascii_case(resource)) => name,
            Some(_) => return Err(ScopeRefusal::Invalid(scope.to_string())),
            None => s,
        };
        if name.contains([',', ';']) {
            return Err(ScopeRefusal::Invalid(scope.to_string()));
        }
        if name == ".default" || DELEGATED_SCOPES.split_whitespace().any(|g| g.eq_ignore_ascii_case(name)) {
            continue;
        }
        if OTHER_GRAPH_PERMISSIONS.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            worst.get_or_insert(ScopeRefusal::NotConsented);
        } else {
            return Err(ScopeRefusal::NotOnGraph(name.to_string()));
        }
    }
    worst.map_or(Ok(()), Err)
}

/// A refused scope, as Entra answers it.
fn scope_refused(r: &ScopeRefusal, client_id: &str, app: &str, now: clock::OffsetDateTime) -> Response {
    match r {
        ScopeRefusal::Invalid(scope) => sts_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!("The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not exist."),
            now,
        ),
        ScopeRefusal::NotOnGraph(name) => sts_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            650053,
            &format!(
                "The application '{app}' asked for scope '{name}' that doesn't exist on the resource '00000003-0000-0000-c000-000000000000'. Contact the app vendor."
            ),
            now,
        ),
        ScopeRefusal::NotConsented => sts_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            65001,
            &format!(
                "The user or administrator has not consented to use the application with ID '{client_id}' named '{app}'. Send an interactive authorization request for this user and resource."
            ),
            now,
        ),
    }
}

/// Delegated permissions the lab's public client holds with admin consent.
pub(super) const DELEGATED_SCOPES: &str = "Directory.AccessAsUser.All Group.ReadWrite.All IdentityRiskyUser.ReadWrite.All User.Read User.ReadBasic.All User.ReadWrite.All UserAuthenticationMethod.ReadWrite.All openid profile email";

pub(super) async fn token(
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
    // a code or a device code carries the scope it was asked with (the parameter is optional)
    let interactive = grant == "authorization_code" || grant == DEVICE_CODE_GRANT;
    let none = String::new();
    let Some(scope) = form.get("scope").or(interactive.then_some(&none)) else {
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
        uti: crate::token::new_uti(),
    };
    let mut refresh_token: Option<String> = None;
    let mut wants_id_token = false;
    // the scope the token answers for; an interactive grant's nonce and session
    let mut granted = scope.clone();
    let mut nonce: Option<String> = None;
    let mut sid: Option<Uuid> = None;
    match grant.as_str() {
        "password" => {
            let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
                return missing(if form.contains_key("username") { "password" } else { "username" });
            };
            let app_name = {
                let t = s.lock();
                let Some(app) = Uuid::parse_str(&client_id).ok().and_then(|id| t.app(&id)) else {
                    return unknown_app(&client_id, &t, now);
                };
                let app_name = app.display_name.clone();
                // a confidential client proves itself; a public one must allow public client flows
                let secret = form.get("client_secret").cloned().or(basic_secret.clone());
                match secret {
                    Some(secret) if !app.secret_matches(&secret, now) => return invalid_secret(&client_id, now),
                    None if !app.is_fallback_public_client => return secret_required(now),
                    _ => {}
                }
                // a scope that is no scope at all: refused before any sign-in is tried
                if let Err(r @ ScopeRefusal::Invalid(_)) = check_delegated_scopes(scope) {
                    return scope_refused(&r, &client_id, &app_name, now);
                }
                app_name
            };
            let attempt = Attempt::new(username, &client_id, &app_name, false);
            let user_id = match password_sign_in(&s, attempt, password).await {
                Ok(id) => id,
                Err(e) => return sign_in_error(&e, username, &s.lock(), now),
            };
            let mut t = s.lock();
            if let Err(r) = check_delegated_scopes(scope) {
                let app = Uuid::parse_str(&client_id).ok().and_then(|id| t.app(&id)).map(|a| a.display_name.clone()).unwrap_or_default();
                return scope_refused(&r, &client_id, &app, now);
            }
            user_claims(&mut claims, t.user(&user_id).expect("signed in"));
            if scope.split_whitespace().any(|s| s == "offline_access") {
                refresh_token = t.issue_refresh_token(user_id, &client_id, scope);
            }
        }
        "refresh_token" => {
            let Some(presented) = form.get("refresh_token") else { return missing("refresh_token") };
            let mut t = s.lock();
            let Some(app) = Uuid::parse_str(&client_id).ok().and_then(|id| t.app(&id)) else {
                return unknown_app(&client_id, &t, now);
            };
            if let Err(r) = check_delegated_scopes(scope) {
                return scope_refused(&r, &client_id, &app.display_name.clone(), now);
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
                Err(ClientError::InvalidSecret) => return invalid_secret(&client_id, now),
            };
            // the app's service principal object id stands in as oid
            claims.oid = app.client_id.to_string();
            claims.sub = app.client_id.to_string();
            claims.roles = app.permissions.clone();
        }
        "authorization_code" => {
            let Some(code) = form.get("code") else { return missing("code") };
            let secret = form.get("client_secret").cloned().or(basic_secret);
            let redirect_uri = form.get("redirect_uri").map(String::as_str);
            let mut t = s.lock();
            let Some(app) = Uuid::parse_str(&client_id).ok().and_then(|id| t.app(&id)) else {
                return unknown_app(&client_id, &t, now);
            };
            let (app_id, public) = (app.client_id, app.is_public_for(redirect_uri.unwrap_or_default()));
            match (public, secret) {
                (true, Some(_)) => {
                    return sts_error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        700025,
                        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
                        now,
                    );
                }
                (false, None) => return secret_required(now),
                (false, Some(secret)) if !app.secret_matches(&secret, now) => return invalid_secret(&client_id, now),
                _ => {}
            }
            let verifier = form.get("code_verifier").map(String::as_str);
            let code = match t.grants.redeem_code(code, app_id, redirect_uri, verifier, now) {
                Ok(c) => c,
                Err(e) => return sts_error(StatusCode::BAD_REQUEST, "invalid_grant", e.code(), &e.message(), now),
            };
            let Some(user) = t.user(&code.user).filter(|u| u.account_enabled) else {
                return sign_in_error(&SignInError::Disabled, "", &t, now);
            };
            user_claims(&mut claims, user);
            granted = code.scope.clone();
            if granted.split_whitespace().any(|s| s == "offline_access") {
                refresh_token = t.issue_refresh_token(code.user, &client_id, &granted);
            }
            wants_id_token = granted.split_whitespace().any(|s| s == "openid");
            (nonce, sid) = (code.nonce, Some(code.sid));
        }
        DEVICE_CODE_GRANT => {
            let Some(device_code) = form.get("device_code").or(form.get("code")) else { return missing("device_code") };
            let mut t = s.lock();
            let Some(app_id) = Uuid::parse_str(&client_id).ok().and_then(|id| t.app(&id)).map(|a| a.client_id) else {
                return unknown_app(&client_id, &t, now);
            };
            use crate::authorize::Poll;
            let (user, session, scope) = match t.grants.poll_device(device_code, app_id, now, std::time::Instant::now()) {
                Poll::Approved { user, sid, scope } => (user, sid, scope),
                Poll::Pending => {
                    return sts_error(
                        StatusCode::BAD_REQUEST,
                        "authorization_pending",
                        70016,
                        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                        now,
                    );
                }
                Poll::SlowDown => {
                    return sts_error(
                        StatusCode::BAD_REQUEST,
                        "slow_down",
                        70016,
                        "OAuth 2.0 device flow error. Polled before the interval passed: slow down (the interval grew by 5 seconds).",
                        now,
                    );
                }
                Poll::Expired => {
                    return sts_error(
                        StatusCode::BAD_REQUEST,
                        "expired_token",
                        70020,
                        "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
                        now,
                    );
                }
                Poll::Declined => {
                    return sts_error(
                        StatusCode::BAD_REQUEST,
                        "authorization_declined",
                        70000,
                        "The end user denied the authorization request.",
                        now,
                    );
                }
                Poll::Unknown => {
                    return sts_error(
                        StatusCode::BAD_REQUEST,
                        "bad_verification_code",
                        70000,
                        "The device_code sent to the /token endpoint wasn't recognized.",
                        now,
                    );
                }
            };
            let Some(u) = t.user(&user).filter(|u| u.account_enabled) else {
                return sign_in_error(&SignInError::Disabled, "", &t, now);
            };
            user_claims(&mut claims, u);
            granted = scope;
            if granted.split_whitespace().any(|s| s == "offline_access") {
                refresh_token = t.issue_refresh_token(user, &client_id, &granted);
            }
            wants_id_token = granted.split_whitespace().any(|s| s == "openid");
            sid = Some(session);
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
    let access = s.signer.sign_access(&claims);
    let mut body = json!({
        "token_type": "Bearer",
        "scope": claims.scp.as_deref().map(|held| response_scope(&granted, held)).unwrap_or_else(|| granted.clone()),
        "expires_in": LIFETIME_SECONDS,
        "ext_expires_in": LIFETIME_SECONDS,
        "access_token": access,
    });
    if let Some(rt) = refresh_token {
        body["refresh_token"] = Value::String(rt);
    }
    if grant != "client_credentials" && (wants_id_token || scope.split_whitespace().any(|s| s == "openid")) {
        // an id token (v2.0) for MSAL's account cache, and client_info when asked for
        let mut id_claims = json!({
            "aud": client_id, "iss": format!("{}/{tid}/v2.0", s.https_base), "iat": iat, "nbf": iat, "exp": iat + LIFETIME_SECONDS,
            "name": claims.name, "oid": claims.oid, "preferred_username": claims.upn, "sub": claims.sub, "tid": tid.to_string(),
            "uti": crate::token::new_uti(), "ver": "2.0",
        });
        if let Some(n) = nonce {
            id_claims["nonce"] = Value::String(n);
        }
        if let Some(sid) = sid {
            id_claims["sid"] = Value::String(sid.to_string());
        }
        body["id_token"] = Value::String(s.signer.sign(&id_claims));
        if form.get("client_info").map(String::as_str) == Some("1") {
            let info = json!({ "uid": claims.oid, "utid": tid.to_string() }).to_string();
            body["client_info"] = Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(info));
        }
    }
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store, no-cache")], Json(body)).into_response()
}

/// A user's password sign-in for an app — the password grant and the sign-in page alike:
/// the cloud's checks, then pass-through authentication's agent or the kept hash, smart
/// lockout, and the sign-in log. The user, or why not.
pub(super) async fn password_sign_in(s: &Shared, mut attempt: Attempt<'_>, password: &str) -> Result<Uuid, SignInError> {
    let username = attempt.upn;
    let (id, credential, pass_through) = {
        let mut t = s.lock();
        match t.sign_in_start(username) {
            Ok((id, credential)) => {
                let user = t.user(&id).expect("found");
                // PTA is for every synced user of a managed domain; cloud users keep the cloud's check
                let pta = (t.sign_in_method == SignInMethod::PassThroughAuthentication && user.synced())
                    .then(|| user.user_principal_name.clone());
                (id, credential, pta)
            }
            Err(e) => {
                // (locked by smart lockout: the user is known, and so is how it signs in)
                let user = t.find_user(username).map(|u| (u.id, u.synced()));
                attempt.method = match user {
                    Some((_, true)) if t.sign_in_method == SignInMethod::PassThroughAuthentication => "Pass-through Authentication",
                    Some((_, true)) => "Password Hash Sync",
                    _ => "Password in the cloud",
                };
                attempt.user = user.map(|(id, _)| id);
                log_sign_in(&mut t, &attempt, Err(&e));
                return Err(e);
            }
        }
    };
    let (outcome, method, agent) = match pass_through {
        Some(upn) => {
            // the agent asks AD, without the tenant held; no fallback to the hash
            let answer = s.pta.validate(&upn, password).await;
            let mut t = s.lock();
            (t.pass_through_finish(id, &answer), "Pass-through Authentication", answer.agent())
        }
        None => {
            // PBKDF2 without the tenant held: sign-ins use both cores and nothing waits on them
            let good = credential.as_ref().is_some_and(|c| c.verify(password));
            let mut t = s.lock();
            let synced = t.user(&id).is_some_and(User::synced);
            (t.sign_in_finish(id, &credential, good, password), if synced { "Password Hash Sync" } else { "Password in the cloud" }, None)
        }
    };
    let mut t = s.lock();
    attempt.user = Some(id);
    attempt.method = method;
    attempt.agent = agent;
    log_sign_in(&mut t, &attempt, outcome.as_ref().map(|_| ()));
    outcome
}

/// The device code grant's name.
pub(super) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A confidential client sent no secret (AADSTS7000218).
pub(super) fn secret_required(now: clock::OffsetDateTime) -> Response {
    sts_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        now,
    )
}

fn invalid_secret(client_id: &str, now: clock::OffsetDateTime) -> Response {
    sts_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000215,
        &format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
        ),
        now,
    )
}

pub(super) fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    let (id, secret) = String::from_utf8(raw).ok()?.split_once(':').map(|(a, b)| (a.to_string(), b.to_string()))?;
    Some((id, secret))
}

pub(super) fn unknown_app(client_id: &str, t: &Tenant, now: clock::OffsetDateTime) -> Response {
    sts_error(StatusCode::BAD_REQUEST, "unauthorized_client", 700016, &unknown_app_message(client_id, t), now)
}

/// AADSTS700016's text: the token endpoint's and the sign-in pages' alike.
pub(super) fn unknown_app_message(client_id: &str, t: &Tenant) -> String {
    format!(
        "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
        t.name
    )
}

/// A user's claims in an access token (the password and refresh grants).
pub(super) fn user_claims(claims: &mut AccessClaims, u: &User) {
    claims.oid = u.id.to_string();
    claims.sub = u.id.to_string();
    claims.upn = Some(u.user_principal_name.clone());
    claims.unique_name = Some(u.user_principal_name.clone());
    claims.name = Some(u.display_name.clone());
    claims.scp = Some(DELEGATED_SCOPES.into());
    claims.wids = u.roles.iter().map(|r| r.template_id().to_string()).collect();
}

/// A password sign-in, for the sign-in log.
pub(super) struct Attempt<'a> {
    pub upn: &'a str,
    pub user: Option<Uuid>,
    pub app_id: &'a str,
    pub app_name: &'a str,
    /// "Password Hash Sync", "Pass-through Authentication" or "Password in the cloud".
    pub method: &'static str,
    pub agent: Option<Uuid>,
    /// On the sign-in page (clientAppUsed "Browser") rather than the password grant.
    pub browser: bool,
}

impl<'a> Attempt<'a> {
    /// `upn`'s sign-in to an app, before anything is known of the user.
    pub(super) fn new(upn: &'a str, app_id: &'a str, app_name: &'a str, browser: bool) -> Attempt<'a> {
        Attempt { upn, user: None, app_id, app_name, method: "", agent: None, browser }
    }
}

fn log_sign_in(t: &mut Tenant, a: &Attempt, outcome: Result<(), &SignInError>) {
    use crate::signins::*;
    let tenant = t.id;
    let id = t.sign_ins.next_id(tenant);
    let when = t.clock().now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default();
    let (error_code, reason) = match outcome {
        Ok(()) => (0, None),
        Err(e) => (e.code(), Some(failure_reason(e).to_string())),
    };
    // the password step itself: good unless AD or the cloud said it was not
    let password_ok =
        matches!(outcome, Ok(()) | Err(SignInError::Disabled | SignInError::PasswordChangeRequired | SignInError::RiskyUserPasswordChange));
    let step = match outcome {
        Ok(()) => "Correct password".to_string(),
        Err(SignInError::InvalidCredentials) => "Invalid username or password or Invalid on-premise username or password.".into(),
        Err(e) => failure_reason(e).to_string(),
    };
    let upn = t.user(&a.user.unwrap_or_default()).map(|u| u.user_principal_name.clone()).unwrap_or_else(|| a.upn.to_string());
    let processing = a
        .agent
        .map(|agent| vec![KeyValue { key: "Pass-through Authentication Agent Id".into(), value: agent.to_string() }])
        .unwrap_or_default();
    t.sign_ins.push(SignIn {
        id,
        created_date_time: when,
        user_principal_name: upn,
        user_id: a.user,
        app_id: a.app_id.to_string(),
        app_display_name: a.app_name.to_string(),
        client_app_used: if a.browser { "Browser" } else { "Mobile Apps and Desktop clients" },
        status: SignInStatus { error_code, failure_reason: reason, additional_details: a.agent.map(|g| format!("PTA AgentId: {g}")) },
        authentication_details: vec![AuthenticationDetail {
            authentication_method: "Password",
            authentication_method_detail: a.method,
            succeeded: password_ok,
            authentication_step_result_detail: step,
        }],
        authentication_processing_details: processing,
    });
}

pub(super) fn sign_in_error(e: &SignInError, username: &str, t: &Tenant, now: clock::OffsetDateTime) -> Response {
    let text = match e {
        SignInError::UnknownUser => format!("The user account {{EUII Hidden}} does not exist in the '{}' directory. To sign into this application, the account must be added to the directory.", t.id),
        SignInError::InvalidCredentials => "Error validating credentials due to invalid username or password.".into(),
        SignInError::Disabled => "The user account is disabled.".into(),
        SignInError::Locked => "Your account is temporarily locked to prevent unauthorized use. Try again later, and if you still have trouble, contact your admin.".into(),
        SignInError::PasswordChangeRequired => "The password is expired.".into(),
        SignInError::RiskyUserPasswordChange => "Password change is required due to a conditional access policy.".into(),
        SignInError::DisabledOnPrem => "The user object in Active Directory backing this account has been disabled. An on-premises administrator should re-enable the account.".into(),
        SignInError::LockedOnPrem => "The user account is locked in the on-premises Active Directory.".into(),
        // the sign-in page then offers the change through writeback, or says it cannot (PTA FAQ)
        SignInError::PasswordExpiredOnPrem if t.sync_features.password_writeback_enabled && t.on_premises_integration.write_back_passwords => {
            "The user's on-premises password is expired.".into()
        }
        SignInError::PasswordExpiredOnPrem => "The user's on-premises password is expired. Your organization doesn't allow you to update your password on this site. Update it according to the method recommended by your organization, or ask your admin if you need help.".into(),
        SignInError::LogonHours => "The user is attempting to log in outside of the allowed hours (this is specified in AD).".into(),
        SignInError::NoAgent => "An Authentication Agent is unable to connect to Active Directory. Make sure that agent servers are members of the same AD forest as the users whose passwords need to be validated and they are able to connect to Active Directory.".into(),
        SignInError::AgentTimedOut => "The Authentication Agent validation request timed out. Make sure that Active Directory is available and responding to requests from the agents.".into(),
        SignInError::AgentCannotDecrypt => "The Authentication Agent is unable to decrypt the password.".into(),
        SignInError::AgentCannotReachDirectory => "An error occurred while communicating with Active Directory. Check the agent logs for more information and verify that Active Directory is operating as expected.".into(),
    };
    let _ = username; // never echoed: Entra hides the account (EUII)
    sts_error(StatusCode::BAD_REQUEST, "invalid_grant", e.code(), &text, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegated_scopes_are_held_not_consented_unknown_or_no_scope_at_all() {
        use ScopeRefusal::*;
        for ok in [
            "https://graph.microsoft.com/.default offline_access openid profile",
            "User.Read openid",
            "https://graph.microsoft.com/User.Read offline_access",
            "00000003-0000-0000-c000-000000000000/UserAuthenticationMethod.ReadWrite.All",
            "user.read",
        ] {
            assert_eq!(check_delegated_scopes(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_delegated_scopes("User.Read Mail.Read"), Err(NotConsented));
        assert_eq!(check_delegated_scopes("https://graph.microsoft.com/Files.Read offline_access"), Err(NotConsented));
        // the Android sample's typo (Files.Read written File.Read): no such Graph permission
        assert_eq!(check_delegated_scopes("File.Read openid"), Err(NotOnGraph("File.Read".into())));
        assert_eq!(check_delegated_scopes("Mail.Read File.Read"), Err(NotOnGraph("File.Read".into())), "the worse refusal");
        for bad in ["api://5d8c32ac-7277-4286-9706-207a4733a594/access_as_user", "Contacts.Read,Mail.Read", "https://example.invalid/x"] {
            assert_eq!(check_delegated_scopes(bad), Err(Invalid(bad.into())), "{bad}");
        }
    }

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
