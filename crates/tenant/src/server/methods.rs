//! Authentication methods: the email and phone methods SSPR uses, the password method and
//! its `resetPassword` operation.

use super::*;

/// Delegated callers with `UserAuthenticationMethod.ReadWrite.All`; application
/// permissions are not supported by these APIs.
pub(super) fn method_admin(s: &TenantServer, headers: &HeaderMap) -> Result<Uuid, Response> {
    match caller(s, headers)? {
        Caller::User { id, scopes } if scopes.iter().any(|x| x == "UserAuthenticationMethod.ReadWrite.All") => Ok(id),
        _ => Err(insufficient_privileges(s)),
    }
}

/// Graph's fixed ids for the methods SSPR uses.
pub(super) const EMAIL_METHOD_ID: &str = "3ddfcfc8-9383-446f-83cc-3ab9be4be18f";
pub(super) const MOBILE_PHONE_METHOD_ID: &str = "3179e48a-750b-4051-897c-87b9720928f7";

/// Who may read and change a user's authentication methods: the user, an app with
/// UserAuthenticationMethod.ReadWrite.All, or an administrator whose role reaches the user
/// (the same table as password resets). Returns the target's id.
pub(super) fn methods_target(s: &TenantServer, headers: &HeaderMap, id: &str) -> Result<Uuid, Response> {
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

pub(super) fn method_json(m: &crate::sspr::Method) -> Value {
    match m {
        crate::sspr::Method::Email(a) => json!({ "id": EMAIL_METHOD_ID, "emailAddress": a }),
        crate::sspr::Method::MobilePhone(p) => {
            json!({ "id": MOBILE_PHONE_METHOD_ID, "phoneNumber": p, "phoneType": "mobile", "smsSignInState": "notSupported" })
        }
    }
}

pub(super) fn list_methods(s: &TenantServer, headers: &HeaderMap, id: &str, kind: &str) -> Response {
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

pub(super) async fn email_methods(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    list_methods(&s, &headers, &id, "email")
}

pub(super) async fn phone_methods(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    list_methods(&s, &headers, &id, "mobilePhone")
}

/// Adds a method; a user has at most one of each kind here (Graph: one email method, one
/// phone of each type).
pub(super) fn add_method(s: &TenantServer, headers: &HeaderMap, id: &str, method: crate::sspr::Method) -> Response {
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

pub(super) async fn add_email_method(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(m): Body<EmailMethod>,
) -> Response {
    let a = m.email_address;
    if a.split_once('@').is_some_and(|(u, d)| !u.is_empty() && d.contains('.')) {
        add_method(&s, &headers, &id, crate::sspr::Method::Email(a))
    } else {
        graph_error(&s, StatusCode::BAD_REQUEST, "badRequest", "Invalid email address.")
    }
}

/// Graph's emailAuthenticationMethod as POSTed.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct EmailMethod {
    email_address: String,
}

/// Graph's phoneAuthenticationMethod as POSTed.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PhoneMethod {
    phone_number: String,
    phone_type: String,
}

/// Phone numbers as Entra takes them: `+<country code> <number>` (e.g. `+1 4255550101`).
pub(super) async fn add_phone_method(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(m): Body<PhoneMethod>,
) -> Response {
    let number = m.phone_number;
    if m.phone_type != "mobile" {
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

pub(super) async fn password_methods(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
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
pub(super) async fn reset_password(
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
            let location = format!("{}/v1.0/users/{target}/authentication/operations/{}", s.base_for(&headers), op.id);
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

pub(super) async fn get_operation(State(s): State<Shared>, headers: HeaderMap, Path((id, op)): Path<(String, String)>) -> Response {
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
