//! The STS's pages: the authorization endpoint and its sign-in pages (username, then
//! password; the account picker; "Update your password"), the device code flow's "Enter
//! code" page, and sign-out. The element ids are Entra's own (`i0116`, `i0118`,
//! `idSIButton9`, `idA_PWD_ForgotPassword`…), so a browser script written against Entra runs
//! here. The request being answered travels in the pages as `ctx` (its query string) and is
//! checked again at every step; what is kept on the server is only the code, the device
//! flow and the session, each bounded ([`crate::authorize`]).

use askama::Template;
use axum::response::Html;
use serde::{Deserialize, Serialize};

use super::*;
use crate::authorize::{Challenge, CodeGrant, DeviceState};
use crate::directory::ChangeVia;

/// The browser's session cookie at the STS (Entra's name).
const SESSION_COOKIE: &str = "ESTSAUTH";

/// An authorization request's parameters (the query string, kept as `ctx`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(super) struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    response_mode: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
}

/// A request found good: where and how to answer it.
struct Valid {
    app_id: Uuid,
    app_name: String,
    redirect_uri: String,
    mode: Mode,
    scope: String,
    challenge: Option<Challenge>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Query,
    Fragment,
    FormPost,
}

/// Why a request is refused: on the STS's own page (nowhere safe to send the answer), or
/// back to the app's redirect URI as `error` and `error_description`.
enum Refusal {
    Page { code: u32, message: String },
    Redirect { valid: Box<Valid>, error: &'static str, code: u32, message: String },
}

fn parameter_too_long(p: &AuthorizeParams) -> bool {
    [&p.redirect_uri, &p.scope, &p.state, &p.nonce, &p.code_challenge, &p.login_hint]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.len() > crate::authorize::MAX_PARAMETER))
}

/// The checks in Entra's order: the app and its redirect URI first (until both are known
/// good nothing is sent anywhere), then the rest as an error sent back to the app.
fn validate(t: &Tenant, p: &AuthorizeParams) -> Result<Valid, Refusal> {
    let page = |code, message: String| Refusal::Page { code, message };
    let missing = |name: &str| page(900144, format!("The request body must contain the following parameter: '{name}'."));
    let Some(client_id) = p.client_id.as_deref() else { return Err(missing("client_id")) };
    if parameter_too_long(p) {
        return Err(page(90015, "The request is too long: a parameter is over 2048 characters.".into()));
    }
    let Some(app) = Uuid::parse_str(client_id).ok().and_then(|id| t.app(&id)) else {
        return Err(page(700016, unknown_app_message(client_id, t)));
    };
    let Some(redirect_uri) = p.redirect_uri.clone() else { return Err(missing("redirect_uri")) };
    if !crate::authorize::redirect_uri_registered(app.redirect_uris(), &redirect_uri) {
        return Err(page(
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
                app.client_id
            ),
        ));
    }
    let mut valid = Valid {
        app_id: app.client_id,
        app_name: app.display_name.clone(),
        redirect_uri: redirect_uri.clone(),
        mode: Mode::Query,
        scope: p.scope.clone().unwrap_or_default(),
        challenge: None,
    };
    let refuse =
        |valid: Valid, error: &'static str, code: u32, message: String| Refusal::Redirect { valid: Box::new(valid), error, code, message };
    match p.response_mode.as_deref() {
        None | Some("query") => {}
        Some("fragment") => valid.mode = Mode::Fragment,
        Some("form_post") => valid.mode = Mode::FormPost,
        Some(other) => {
            return Err(refuse(
                valid,
                "invalid_request",
                900144,
                format!("The provided value for the input parameter 'response_mode' is not valid: '{other}'."),
            ));
        }
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(refuse(
                valid,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'response_type'.".into(),
            ));
        }
        Some(other) => {
            return Err(refuse(
                valid,
                "unsupported_response_type",
                700054,
                format!("response_type '{other}' is not enabled for the application."),
            ));
        }
    }
    let Some(scope) = p.scope.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Err(refuse(valid, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.".into()));
    };
    match check_delegated_scopes(scope) {
        // consent is not asked for: the lab's apps are granted by its administrator
        Ok(()) | Err(ScopeRefusal::NotConsented) => {}
        Err(ScopeRefusal::Invalid(_)) => {
            return Err(refuse(
                valid,
                "invalid_scope",
                70011,
                format!("The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not exist."),
            ));
        }
        Err(ScopeRefusal::NotOnGraph(name)) => {
            let message = format!(
                "The application '{}' asked for scope '{name}' that doesn't exist on the resource '00000003-0000-0000-c000-000000000000'. Contact the app vendor.",
                valid.app_name
            );
            return Err(refuse(valid, "invalid_client", 650053, message));
        }
    }
    let challenge = match Challenge::parse(p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
        Ok(c) => c,
        Err(m) => return Err(refuse(valid, "invalid_request", 900144, m)),
    };
    // a public client proves nothing at the token endpoint but PKCE: S256 it must be
    if app.is_public_for(&redirect_uri) && !matches!(challenge, Some(Challenge::S256(_))) {
        return Err(refuse(
            valid,
            "invalid_request",
            9002325,
            "Proof Key for Code Exchange is required for cross-origin authorization code redemption. This lab asks it of every public client, with code_challenge_method S256.".into(),
        ));
    }
    if let Some(prompt) = p.prompt.as_deref().filter(|p| !matches!(*p, "login" | "none" | "select_account" | "consent")) {
        return Err(refuse(
            valid,
            "invalid_request",
            90023,
            format!("Invalid request. The 'prompt' parameter has an unsupported value '{prompt}'."),
        ));
    }
    valid.challenge = challenge;
    Ok(valid)
}

/// The answer for the app: at its redirect URI, in the query, the fragment or a form post.
fn answer(v: &Valid, fields: Vec<(&'static str, String)>) -> Response {
    match v.mode {
        Mode::FormPost => {
            let page = FormPostPage { action: v.redirect_uri.clone(), fields };
            html(&page)
        }
        mode => {
            let encoded = serde_urlencoded::to_string(&fields).unwrap_or_default();
            let sep = match mode {
                Mode::Fragment => "#",
                _ if v.redirect_uri.contains('?') => "&",
                _ => "?",
            };
            let location = format!("{}{sep}{encoded}", v.redirect_uri);
            (StatusCode::FOUND, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".into())]).into_response()
        }
    }
}

fn refused(r: Refusal, p: &AuthorizeParams, tenant_name: &str, now: clock::OffsetDateTime) -> Response {
    match r {
        Refusal::Page { code, message } => error_page(tenant_name, code, &message, now),
        Refusal::Redirect { valid, error, code, message } => {
            let mut fields = vec![("error", error.to_string()), ("error_description", described(code, &message, now))];
            if let Some(state) = &p.state {
                fields.push(("state", state.clone()));
            }
            answer(&valid, fields)
        }
    }
}

/// An AADSTS description with its trace lines, as the token endpoint writes them.
fn described(code: u32, message: &str, now: clock::OffsetDateTime) -> String {
    let stamp = format!("{} {:02}:{:02}:{:02}Z", now.date(), now.hour(), now.minute(), now.second());
    format!("AADSTS{code}: {message} Trace ID: {} Correlation ID: {} Timestamp: {stamp}", Uuid::new_v4(), Uuid::new_v4())
}

fn error_page(tenant_name: &str, code: u32, message: &str, now: clock::OffsetDateTime) -> Response {
    let stamp = now.format(&clock::format_description::well_known::Rfc3339).unwrap_or_default();
    let page = MessagePage {
        tenant_name: tenant_name.into(),
        heading: "Sorry, but we're having trouble signing you in.".into(),
        error: Some(format!("AADSTS{code}: {message}")),
        lines: vec![],
        details: vec![
            ("Request Id".into(), Uuid::new_v4().to_string()),
            ("Correlation Id".into(), Uuid::new_v4().to_string()),
            ("Timestamp".into(), stamp),
        ],
        link: None,
    };
    let mut r = html(&page);
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r
}

fn html(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], Html(body)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("page: {e}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "sts_username.html")]
struct UsernamePage {
    tenant_name: String,
    action: String,
    ctx: String,
    login: String,
    app_name: String,
    sspr: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "sts_password.html")]
struct PasswordPage {
    tenant_name: String,
    action: String,
    ctx: String,
    login: String,
    sspr: String,
    error: Option<String>,
    code: Option<u32>,
}

#[derive(Template)]
#[template(path = "sts_change.html")]
struct ChangePage {
    tenant_name: String,
    action: String,
    ctx: String,
    login: String,
    risky: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "sts_pick.html")]
struct PickPage {
    tenant_name: String,
    action: String,
    ctx: String,
    login: String,
}

#[derive(Template)]
#[template(path = "sts_message.html")]
struct MessagePage {
    tenant_name: String,
    heading: String,
    error: Option<String>,
    lines: Vec<String>,
    details: Vec<(String, String)>,
    link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "sts_device.html")]
struct DevicePage {
    tenant_name: String,
    action: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "sts_device_confirm.html")]
struct DeviceConfirmPage {
    tenant_name: String,
    action: String,
    ctx: String,
    app_name: String,
}

#[derive(Template)]
#[template(path = "sts_form_post.html")]
struct FormPostPage {
    action: String,
    fields: Vec<(&'static str, String)>,
}

/// Where the pages are: the request's own flow, kept as `ctx`.
#[derive(Clone)]
enum Flow {
    /// An authorization request (its query string).
    Authorize(Box<AuthorizeParams>),
    /// A device flow, by its user code.
    Device(String),
}

impl Flow {
    fn ctx(&self) -> String {
        match self {
            Flow::Authorize(p) => format!("a:{}", serde_urlencoded::to_string(p).unwrap_or_default()),
            Flow::Device(code) => format!("d:{code}"),
        }
    }

    fn parse(ctx: &str) -> Option<Flow> {
        match ctx.split_once(':')? {
            ("a", q) => serde_urlencoded::from_str(q).ok().map(|p| Flow::Authorize(Box::new(p))),
            ("d", code) => Some(Flow::Device(code.to_string())),
            _ => None,
        }
    }
}

/// SSPR's page, and back here after it ("Forgot my password").
fn sspr_link(login: &str, back: &str) -> String {
    let q = serde_urlencoded::to_string([("user", login), ("ru", back)]).unwrap_or_default();
    format!("/portal/sspr?{q}")
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == SESSION_COOKIE).then(|| v.to_string())
    })
}

fn set_cookie(s: &TenantServer, headers: &HeaderMap, value: &str, max_age: u64) -> (header::HeaderName, String) {
    // Secure when the request came to the https listener's port
    let port = s.https_base.rsplit_once(':').map(|(_, p)| p);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).and_then(|h| h.rsplit_once(':')).map(|(_, p)| p);
    let secure = if host.is_some() && host == port { "; Secure" } else { "" };
    (header::SET_COOKIE, format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"))
}

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(super) async fn authorize(
    State(s): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    if let Err(r) = check_tenant(&s, &tenant) {
        return r;
    }
    let t = s.lock();
    let now = t.clock().now();
    let valid = match validate(&t, &p) {
        Ok(v) => v,
        Err(r) => return refused(r, &p, &t.name, now),
    };
    let session = session_cookie(&headers).and_then(|c| t.session(&c));
    // a session for another user than the hint is no session for this request
    let session = session.filter(|sess| {
        p.login_hint.as_deref().is_none_or(|h| t.user(&sess.user).is_some_and(|u| u.user_principal_name.eq_ignore_ascii_case(h)))
    });
    let flow = Flow::Authorize(Box::new(p.clone()));
    let action = format!("/{tenant}/login");
    match (p.prompt.as_deref(), session) {
        (Some("none"), None) => {
            let message = "A silent sign-in request was sent but no user is signed in. The cookies used to represent the user's session were not sent in the request to Microsoft Entra ID.";
            refused(
                Refusal::Redirect { valid: Box::new(valid), error: "login_required", code: 50058, message: message.into() },
                &p,
                &t.name,
                now,
            )
        }
        (None | Some("none") | Some("consent"), Some(sess)) => {
            drop(t);
            issue(&s, &valid, &p, sess.user, sess.sid)
        }
        (Some("select_account"), Some(sess)) => {
            let login = t.user(&sess.user).map(|u| u.user_principal_name.clone()).unwrap_or_default();
            html(&PickPage { tenant_name: t.name.clone(), action, ctx: flow.ctx(), login })
        }
        _ => first_page(&t, &flow, &action, &valid.app_name, p.login_hint.as_deref()),
    }
}

/// The username page, or the password page when the hint names a user.
fn first_page(t: &Tenant, flow: &Flow, action: &str, app_name: &str, hint: Option<&str>) -> Response {
    let back = back_to(flow, action);
    match hint.and_then(|h| t.find_user(h)) {
        Some(u) => html(&PasswordPage {
            tenant_name: t.name.clone(),
            action: action.into(),
            ctx: flow.ctx(),
            login: u.user_principal_name.clone(),
            sspr: sspr_link(&u.user_principal_name, &back),
            error: None,
            code: None,
        }),
        None => html(&UsernamePage {
            tenant_name: t.name.clone(),
            action: action.into(),
            ctx: flow.ctx(),
            login: hint.unwrap_or_default().into(),
            app_name: app_name.into(),
            sspr: sspr_link(hint.unwrap_or_default(), &back),
            error: None,
        }),
    }
}

/// Where "Forgot my password" comes back to: the request again.
fn back_to(flow: &Flow, action: &str) -> String {
    let tenant = action.trim_start_matches('/').split('/').next().unwrap_or("common");
    match flow {
        Flow::Authorize(p) => format!("/{tenant}/oauth2/v2.0/authorize?{}", serde_urlencoded::to_string(p).unwrap_or_default()),
        Flow::Device(_) => "/devicelogin".into(),
    }
}

/// A code for `user`, sent to the app.
fn issue(s: &Shared, v: &Valid, p: &AuthorizeParams, user: Uuid, sid: Uuid) -> Response {
    let mut t = s.lock();
    let now = t.clock().now();
    let grant = CodeGrant {
        client_id: v.app_id,
        redirect_uri: v.redirect_uri.clone(),
        user,
        scope: v.scope.clone(),
        nonce: p.nonce.clone(),
        challenge: v.challenge.clone(),
        sid,
        issued: now,
    };
    let code = t.grants.issue_code(grant);
    let mut fields = vec![("code", code)];
    if let Some(state) = &p.state {
        fields.push(("state", state.clone()));
    }
    fields.push(("session_state", sid.to_string()));
    answer(v, fields)
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    ctx: String,
    step: String,
    loginfmt: Option<String>,
    passwd: Option<String>,
    oldpasswd: Option<String>,
    newpasswd: Option<String>,
    confirmnewpasswd: Option<String>,
}

/// The account's words for a refused sign-in, on the password page.
fn page_text(e: &SignInError) -> String {
    match e {
        SignInError::InvalidCredentials => "Your account or password is incorrect. If you don't remember your password, reset it now.".into(),
        SignInError::Locked => "Your account is temporarily locked to prevent unauthorized use. Try again later, and if you still have trouble, contact your admin.".into(),
        SignInError::Disabled | SignInError::DisabledOnPrem => "Your account has been locked. Contact your support person to unlock it, then try again.".into(),
        SignInError::UnknownUser => "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin.".into(),
        other => crate::signins::failure_reason(other).to_string(),
    }
}

/// `POST /{tenant}/login`: a step of the sign-in pages.
pub(super) async fn login(State(s): State<Shared>, Path(tenant): Path<String>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    if let Err(r) = check_tenant(&s, &tenant) {
        return r;
    }
    let action = format!("/{tenant}/login");
    let (name, now) = {
        let t = s.lock();
        (t.name.clone(), t.clock().now())
    };
    let Some(flow) = Flow::parse(&f.ctx) else {
        return error_page(&name, 90014, "The request is missing its context (ctx): start the sign-in again from the application.", now);
    };
    // the request is checked again at every step
    let (valid, params, app_name, app_id) = match &flow {
        Flow::Authorize(p) => {
            let t = s.lock();
            match validate(&t, p) {
                Ok(v) => {
                    let (n, id) = (v.app_name.clone(), v.app_id);
                    (Some(v), Some(p.as_ref().clone()), n, id)
                }
                Err(r) => return refused(r, p, &t.name, now),
            }
        }
        Flow::Device(code) => {
            let t = s.lock();
            let Some(d) = t.grants.device_by_user_code(code, now) else {
                return html(&DevicePage { tenant_name: name, action: "/devicelogin".into(), error: Some(EXPIRED_CODE.into()) });
            };
            let app = t.app(&d.client_id).map(|a| a.display_name.clone()).unwrap_or_default();
            (None, None, app, d.client_id)
        }
    };
    let login = f.loginfmt.clone().unwrap_or_default().trim().to_string();
    let app_text = app_id.to_string();
    let back = back_to(&flow, &action);
    let password_page = |error: Option<String>, code: Option<u32>| {
        html(&PasswordPage {
            tenant_name: name.clone(),
            action: action.clone(),
            ctx: flow.ctx(),
            login: login.clone(),
            sspr: sspr_link(&login, &back),
            error,
            code,
        })
    };
    let username_page = |error: Option<String>| {
        html(&UsernamePage {
            tenant_name: name.clone(),
            action: action.clone(),
            ctx: flow.ctx(),
            login: login.clone(),
            app_name: app_name.clone(),
            sspr: sspr_link(&login, &back),
            error,
        })
    };
    let change_page = |risky: bool, error: Option<String>| {
        html(&ChangePage { tenant_name: name.clone(), action: action.clone(), ctx: flow.ctx(), login: login.clone(), risky, error })
    };
    let user = match f.step.as_str() {
        "other" => return username_page(None),
        "decline" => {
            if let Flow::Device(code) = &flow {
                s.lock().grants.answer_device(code, DeviceState::Declined);
            }
            return html(&MessagePage {
                tenant_name: name,
                heading: "Sign-in cancelled".into(),
                error: None,
                lines: vec![format!("You have not signed in to {app_name}. You may now close this window.")],
                details: vec![],
                link: None,
            });
        }
        "session" => {
            let t = s.lock();
            match session_cookie(&headers).and_then(|c| t.session(&c)) {
                Some(sess) => (sess.user, Some(sess.sid)),
                None => {
                    drop(t);
                    return username_page(None);
                }
            }
        }
        "username" => {
            if s.lock().find_user(&login).is_some() {
                return password_page(None, None);
            }
            return username_page(Some(page_text(&SignInError::UnknownUser)));
        }
        "password" => {
            let password = f.passwd.clone().unwrap_or_default();
            let attempt = oidc::Attempt::new(&login, &app_text, &app_name, true);
            match password_sign_in(&s, attempt, &password).await {
                Ok(id) => (id, None),
                Err(e @ (SignInError::PasswordChangeRequired | SignInError::RiskyUserPasswordChange)) => {
                    return change_page(e == SignInError::RiskyUserPasswordChange, None);
                }
                Err(SignInError::PasswordExpiredOnPrem) if s.lock().writeback_enabled() => return change_page(false, None),
                Err(SignInError::UnknownUser) => return username_page(Some(page_text(&SignInError::UnknownUser))),
                Err(e) => return password_page(Some(page_text(&e)), Some(e.code())),
            }
        }
        "change" => {
            let (old, new, confirm) = (
                f.oldpasswd.clone().unwrap_or_default(),
                f.newpasswd.clone().unwrap_or_default(),
                f.confirmnewpasswd.clone().unwrap_or_default(),
            );
            if new != confirm {
                return change_page(false, Some("The passwords don't match. Enter the same password twice.".into()));
            }
            let Some(id) = s.lock().find_user(&login).map(|u| u.id) else {
                return change_page(false, Some(account::change_message(&crate::directory::ChangeError::WrongCurrentPassword).into()));
            };
            if let Err(e) = account::change_password(&s, id, &old, &new, ChangeVia::SignIn).await {
                return change_page(false, Some(account::change_message(&e).into()));
            }
            // signed in with the new password (checked as any sign-in is)
            let attempt = oidc::Attempt::new(&login, &app_text, &app_name, true);
            match password_sign_in(&s, attempt, &new).await {
                Ok(id) => (id, None),
                Err(e) => return password_page(Some(page_text(&e)), Some(e.code())),
            }
        }
        _ => return error_page(&name, 90014, "Unknown sign-in step.", now),
    };
    let (user, sid) = user;
    // a new session, unless the user went on with the one they had
    let (cookie, sid) = match sid {
        Some(sid) => (None, sid),
        None => match s.lock().start_session(user) {
            Some((cookie, sid)) => (Some(cookie), sid),
            None => return error_page(&name, 50034, "The user account has no password to sign in with.", now),
        },
    };
    let mut r = match (&flow, valid, params) {
        (Flow::Authorize(_), Some(v), Some(p)) => issue(&s, &v, &p, user, sid),
        (Flow::Device(code), _, _) => {
            s.lock().grants.answer_device(code, DeviceState::Approved { user, sid });
            html(&MessagePage {
                tenant_name: name,
                heading: app_name.clone(),
                error: None,
                lines: vec![format!("You have signed in to the {app_name} application on your device. You may now close this window.")],
                details: vec![],
                link: None,
            })
        }
        _ => return error_page(&name, 90014, "The sign-in lost its request.", now),
    };
    if let Some(cookie) = cookie {
        let (k, v) = set_cookie(&s, &headers, &cookie, crate::authorize::SESSION_LIFETIME.as_secs());
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

const EXPIRED_CODE: &str = "The code you entered has expired. Get a new code from the device you're trying to sign in to and try again.";
const WRONG_CODE: &str = "That code didn't work. Check the code and try again.";

/// `POST /{tenant}/oauth2/v2.0/devicecode`: a device flow begins.
pub(super) async fn devicecode(
    State(s): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = check_tenant(&s, &tenant) {
        return r;
    }
    let mut t = s.lock();
    let now = t.clock().now();
    let Some(client_id) = form.get("client_id") else {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            now,
        );
    };
    let Some(app) = Uuid::parse_str(client_id).ok().and_then(|id| t.app(&id)) else {
        return unknown_app(client_id, &t, now);
    };
    if !app.is_fallback_public_client {
        return secret_required(now);
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    if scope.trim().is_empty() {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter.",
            now,
        );
    }
    if let Err(ScopeRefusal::Invalid(_) | ScopeRefusal::NotOnGraph(_)) = check_delegated_scopes(&scope) {
        return sts_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!("The provided value for the input parameter 'scope' is not valid. The scope '{scope}' does not exist."),
            now,
        );
    }
    let app_id = app.client_id;
    let (device_code, user_code) = t.grants.start_device(app_id, &scope, now);
    let uri = format!("{}/devicelogin", s.base_for(&headers));
    Json(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": crate::authorize::DEVICE_LIFETIME.as_secs(),
        "interval": crate::authorize::DEVICE_INTERVAL_SECONDS,
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
    }))
    .into_response()
}

/// `GET /devicelogin`: the "Enter code" page.
pub(super) async fn device_page(State(s): State<Shared>) -> Response {
    let name = s.lock().name.clone();
    html(&DevicePage { tenant_name: name, action: "/devicelogin".into(), error: None })
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    otc: String,
}

/// `POST /devicelogin`: the code typed; then "Are you trying to sign in to …?".
pub(super) async fn device_code_entered(State(s): State<Shared>, Form(f): Form<CodeForm>) -> Response {
    let t = s.lock();
    let now = t.clock().now();
    let Some(d) = t.grants.device_by_user_code(&f.otc, now) else {
        return html(&DevicePage { tenant_name: t.name.clone(), action: "/devicelogin".into(), error: Some(WRONG_CODE.into()) });
    };
    let app_name = t.app(&d.client_id).map(|a| a.display_name.clone()).unwrap_or_default();
    let flow = Flow::Device(d.user_code.clone());
    html(&DeviceConfirmPage { tenant_name: t.name.clone(), action: format!("/{}/login", t.id), ctx: flow.ctx(), app_name })
}

#[derive(Deserialize)]
pub(super) struct LogoutParams {
    post_logout_redirect_uri: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
}

/// `GET /{tenant}/oauth2/v2.0/logout`: the session ends; back to the app when the address is
/// one it registered, else the "signed out" page.
pub(super) async fn logout(
    State(s): State<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(p): Query<LogoutParams>,
) -> Response {
    if let Err(r) = check_tenant(&s, &tenant) {
        return r;
    }
    let mut t = s.lock();
    if let Some(c) = session_cookie(&headers) {
        t.grants.end_session(&c);
    }
    let registered =
        p.post_logout_redirect_uri.as_deref().filter(|uri| match p.client_id.as_deref().and_then(|c| Uuid::parse_str(c).ok()) {
            Some(id) => t.app(&id).is_some_and(|a| crate::authorize::redirect_uri_registered(a.redirect_uris(), uri)),
            None => t.apps().iter().any(|a| crate::authorize::redirect_uri_registered(a.redirect_uris(), uri)),
        });
    let mut r = match registered {
        Some(uri) => {
            let location = match &p.state {
                Some(state) => format!(
                    "{uri}{}{}",
                    if uri.contains('?') { "&" } else { "?" },
                    serde_urlencoded::to_string([("state", state)]).unwrap_or_default()
                ),
                None => uri.to_string(),
            };
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        None => html(&MessagePage {
            tenant_name: t.name.clone(),
            heading: "You signed out of your account".into(),
            error: None,
            lines: vec!["It's a good idea to close all browser windows.".into()],
            details: vec![],
            link: None,
        }),
    };
    let (k, v) = set_cookie(&s, &headers, "", 0);
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(k, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_survives_its_trip_through_the_pages() {
        let p = AuthorizeParams {
            client_id: Some("c".into()),
            redirect_uri: Some("http://localhost:5/x?y=1&z=2".into()),
            state: Some("a b&c=d".into()),
            ..Default::default()
        };
        let ctx = Flow::Authorize(Box::new(p.clone())).ctx();
        let Some(Flow::Authorize(back)) = Flow::parse(&ctx) else { panic!("{ctx}") };
        assert_eq!(back.redirect_uri, p.redirect_uri, "{ctx}");
        assert_eq!(back.state, p.state);
        assert!(matches!(Flow::parse("d:ABC"), Some(Flow::Device(c)) if c == "ABC"));
        assert!(Flow::parse("x:1").is_none());
    }
}
