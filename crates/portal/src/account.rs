//! A signed-in user's own pages, after My Account and aka.ms/ssprsetup: the methods SSPR can
//! verify them with (registration: an alternate email, a mobile phone) and "Change password"
//! (`POST /me/changePassword`; a synced user's change is written back by the engine). The
//! user's token stays on the server behind an HttpOnly, SameSite=Strict session cookie.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::{Shared, api_error, render, render_status};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/portal/account", get(account))
        .route("/portal/account/email", post(add_email))
        .route("/portal/account/phone", post(add_phone))
        .route("/portal/account/password", get(password_page).post(change_password))
        .route("/portal/account/signout", post(signout))
}

/// The user's (name, token), or the sign-in page.
macro_rules! signed_in {
    ($p:expr, $headers:expr) => {
        crate::session::signed_in!($p.users, $headers, "/portal/signin")
    };
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    user: String,
    email: Option<String>,
    phone: Option<String>,
    message: Option<String>,
    error: Option<String>,
}

async fn account_page(p: &crate::Portal, user: String, token: &str, message: Option<String>, error: Option<String>) -> Response {
    let (_, emails) = p.api(Method::GET, &format!("/v1.0/users/{user}/authentication/emailMethods"), Some(token), None).await;
    let (_, phones) = p.api(Method::GET, &format!("/v1.0/users/{user}/authentication/phoneMethods"), Some(token), None).await;
    let page = AccountPage {
        email: emails["value"][0]["emailAddress"].as_str().map(str::to_string),
        phone: phones["value"][0]["phoneNumber"].as_str().map(str::to_string),
        user,
        message,
        error,
    };
    render(&page)
}

async fn account(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (user, token) = signed_in!(p, headers);
    account_page(&p, user, &token, None, None).await
}

#[derive(Deserialize)]
struct EmailForm {
    email: String,
}

async fn add_email(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<EmailForm>) -> Response {
    let (user, token) = signed_in!(p, headers);
    let body = json!({ "emailAddress": f.email.trim() });
    register(&p, user, &token, "emailMethods", body, "Your alternate email was registered.").await
}

#[derive(Deserialize)]
struct PhoneForm {
    phone: String,
}

async fn add_phone(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<PhoneForm>) -> Response {
    let (user, token) = signed_in!(p, headers);
    let body = json!({ "phoneNumber": f.phone.trim(), "phoneType": "mobile" });
    register(&p, user, &token, "phoneMethods", body, "Your mobile phone was registered.").await
}

/// Adds one of the user's methods (`emailMethods`, `phoneMethods`), then shows the account.
async fn register(p: &crate::Portal, user: String, token: &str, kind: &str, body: serde_json::Value, done: &str) -> Response {
    let path = format!("/v1.0/users/{user}/authentication/{kind}");
    let (status, answer) = p.api(Method::POST, &path, Some(token), Some(body)).await;
    match status {
        201 => account_page(p, user, token, Some(done.into()), None).await,
        _ => account_page(p, user, token, None, Some(api_error(&answer).1)).await,
    }
}

#[derive(Template)]
#[template(path = "account_password.html")]
struct PasswordPage {
    user: String,
    done: bool,
    error: Option<String>,
}

async fn password_page(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (user, _) = signed_in!(p, headers);
    render(&PasswordPage { user, done: false, error: None })
}

#[derive(Deserialize)]
struct ChangeForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

async fn change_password(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<ChangeForm>) -> Response {
    let (user, token) = signed_in!(p, headers);
    if f.new_password != f.confirm_password {
        let error = Some("The passwords don't match. Enter the same password twice.".to_string());
        return render_status(StatusCode::BAD_REQUEST, &PasswordPage { user, done: false, error });
    }
    let body = json!({ "currentPassword": f.current_password, "newPassword": f.new_password });
    let (status, answer) = p.api(Method::POST, "/v1.0/me/changePassword", Some(&token), Some(body)).await;
    if !(200..300).contains(&status) {
        let error = Some(api_error(&answer).1);
        return render_status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), &PasswordPage { user, done: false, error });
    }
    render(&PasswordPage { user, done: true, error: None })
}

async fn signout(State(p): State<Shared>, headers: HeaderMap) -> Response {
    ([(header::SET_COOKIE, p.users.end(&headers))], Redirect::to("/portal/signin")).into_response()
}
