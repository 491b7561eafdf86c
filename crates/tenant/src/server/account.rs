//! A user's own password change: Graph's `POST /me/changePassword` and the sign-in page's
//! change (`POST /lab/signIn/changePassword`), which serves the interruptions ROPC cannot
//! finish — an expired or admin-forced password (AADSTS50055) and the user-risk policy's
//! secure change (AADSTS50142).

use super::*;
use crate::directory::{ChangeError, ChangeVia};
use crate::sspr::WritebackError;

/// What Graph answers for each refusal. The wrong-current-password text is the lab's own
/// (Microsoft does not document it; docs/fidelity.md).
fn change_error(s: &TenantServer, e: &ChangeError) -> Response {
    let (status, code) = match e {
        ChangeError::NotFound => return no_such_resource(s, "me"),
        ChangeError::OnPremises(WritebackError::Unreachable) => (StatusCode::SERVICE_UNAVAILABLE, "serviceNotAvailable"),
        ChangeError::OnPremises(WritebackError::Policy) => (StatusCode::BAD_REQUEST, "Request_BadRequest"),
        ChangeError::OnPremises(_) => (StatusCode::FORBIDDEN, "Authorization_RequestDenied"),
        _ => (StatusCode::BAD_REQUEST, "Request_BadRequest"),
    };
    graph_error(s, status, code, change_message(e))
}

/// A refused change in words (Graph's message, and the sign-in page's).
pub(super) fn change_message(e: &ChangeError) -> &'static str {
    match e {
        ChangeError::NotFound | ChangeError::WrongCurrentPassword => "The current password you entered is incorrect.",
        ChangeError::Policy(_) | ChangeError::SameAsCurrent => COMPLEXITY_MESSAGE,
        ChangeError::WritebackNotEnabled => {
            "The password of this user is managed on-premises, and password writeback is not enabled for the organization."
        }
        ChangeError::OnPremises(WritebackError::Policy) => {
            "Unfortunately, your password contains a word, phrase, or pattern that makes it easily guessable or does not meet your organization's on-premises password policy."
        }
        ChangeError::OnPremises(WritebackError::Unreachable) => {
            "We can't change your password due to a poor connection with your on-premises environment. Try again later."
        }
        ChangeError::OnPremises(_) => "We're unable to change your password due to an error in your on-premises configuration.",
    }
}

/// A user's own change, through the writeback port for synced users: both sides or neither.
pub(super) async fn change_password(s: &Shared, id: Uuid, current: &str, new: &str, via: ChangeVia) -> Result<(), ChangeError> {
    super::writeback::through(s, id, |t| t.change_password(id, current, new, via), |t, request, outcome| t.finish_change(request, outcome))
        .await
}

fn passwords_from(s: &TenantServer, body: &[u8], extra: &[&str]) -> Result<serde_json::Map<String, Value>, Response> {
    let Some(m) = body_json(body) else { return Err(unreadable_json(s)) };
    if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "currentPassword" | "newPassword") && !extra.contains(&k.as_str())) {
        return Err(graph_error(
            s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("Property '{k}' does not exist as a declared property or extension property."),
        ));
    }
    for k in ["currentPassword", "newPassword"].iter().chain(extra) {
        if !m.get(*k).is_some_and(Value::is_string) {
            return Err(graph_error(s, StatusCode::BAD_REQUEST, "Request_BadRequest", &format!("Invalid value for property '{k}'.")));
        }
    }
    Ok(m)
}

/// `POST /me/changePassword`: 204 on success. Delegated only.
pub(super) async fn me_change_password(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let id = match caller(&s, &headers) {
        Ok(Caller::User { id, scopes })
            if scopes
                .iter()
                .any(|x| matches!(x.as_str(), "Directory.AccessAsUser.All" | "User-PasswordProfile.ReadWrite.All" | "User.ReadWrite")) =>
        {
            id
        }
        Ok(Caller::User { .. }) => return insufficient_privileges(&s),
        Ok(Caller::App { .. }) => {
            return graph_error(&s, StatusCode::BAD_REQUEST, "BadRequest", "/me request is only valid with delegated authentication flow.");
        }
        Err(r) => return r,
    };
    change(&s, id, &body, ChangeVia::Graph).await
}

/// `POST /users/{id}/changePassword`: only on one's own account, as Graph.
pub(super) async fn user_change_password(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let id = match caller(&s, &headers) {
        Ok(Caller::User { id, .. }) => id,
        Ok(Caller::App { .. }) => return insufficient_privileges(&s),
        Err(r) => return r,
    };
    let own = s.lock().find_user(&key).is_some_and(|u| u.id == id);
    if !own {
        return graph_error(&s, StatusCode::FORBIDDEN, "Authorization_RequestDenied", "Access to change password operation is denied.");
    }
    change(&s, id, &body, ChangeVia::Graph).await
}

async fn change(s: &Shared, id: Uuid, body: &[u8], via: ChangeVia) -> Response {
    let m = match passwords_from(s, body, &[]) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let (current, new) = (m["currentPassword"].as_str().unwrap_or(""), m["newPassword"].as_str().unwrap_or(""));
    match change_password(s, id, current, new, via).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => change_error(s, &e),
    }
}

/// `POST /lab/signIn/changePassword` `{"userPrincipalName","currentPassword","newPassword"}`:
/// the sign-in page's "Update your password", no token needed (the user cannot get one
/// yet). Always written back for synced users. Unknown users get the same answer as a
/// wrong password, as a sign-in page does.
pub(super) async fn sign_in_change_password(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let m = match passwords_from(&s, &body, &["userPrincipalName"]) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(id) = s.lock().find_user(m["userPrincipalName"].as_str().unwrap_or("")).map(|u| u.id) else {
        return change_error(&s, &ChangeError::WrongCurrentPassword);
    };
    let body = json!({ "currentPassword": m["currentPassword"], "newPassword": m["newPassword"] }).to_string();
    change(&s, id, body.as_bytes(), ChangeVia::SignIn).await
}
