//! Self-service password reset as JSON (the portal's steps; no sign-in: the user has lost the
//! password), the outbox its codes go to, and the SSPR policy.

use super::*;

pub(super) fn sspr_error(e: &crate::sspr::Error) -> Response {
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

/// "Who are you?"
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Start {
    user_principal_name: String,
}

pub(super) async fn sspr_start(State(s): State<Shared>, Body(Start { user_principal_name: upn }): Body<Start>) -> Response {
    // an agent of the kind that provisions the user must be connected
    let agent = s.lock().agent_of_upn(&upn).unwrap_or_default();
    let writeback_up = s.writeback.available(agent);
    let mut t = s.lock();
    match t.sspr_start(&upn, writeback_up) {
        Ok(f) => {
            let u = t.user(&f.user).expect("flow user");
            let methods: Vec<Value> = t.usable_methods(u).iter().map(|m| json!({ "type": m.kind(), "display": m.masked() })).collect();
            // a synced user's new password is judged by AD's policy (written back), a cloud
            // user's by Entra's: the page says which
            let body = json!({ "id": f.id.to_string(), "gatesRequired": f.gates_required, "methods": methods, "unlockOffered": f.unlock_offered, "onPremisesSyncEnabled": u.synced() });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(e) => sspr_error(&e),
    }
}

/// A flow id from the path; anything unparseable is a flow that does not exist.
pub(super) fn flow_id(flow: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(flow).map_err(|_| sspr_error(&crate::sspr::Error::FlowExpired))
}

/// Send a code by `email` or `mobilePhone`.
#[derive(serde::Deserialize)]
pub(super) struct SendCode {
    method: String,
}

pub(super) async fn sspr_code(State(s): State<Shared>, Path(flow): Path<String>, Body(SendCode { method }): Body<SendCode>) -> Response {
    let id = match flow_id(&flow) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match s.lock().sspr_send_code(id, &method) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({ "expiresInSeconds": crate::sspr::CODE_LIFETIME.as_secs() }))).into_response(),
        Err(e) => sspr_error(&e),
    }
}

/// The code a method received.
#[derive(serde::Deserialize)]
pub(super) struct Verify {
    method: String,
    code: String,
}

pub(super) async fn sspr_verify(
    State(s): State<Shared>,
    Path(flow): Path<String>,
    Body(Verify { method, code }): Body<Verify>,
) -> Response {
    let id = match flow_id(&flow) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match s.lock().sspr_verify(id, &method, &code) {
        Ok((passed, required)) => Json(json!({ "gatesPassed": passed, "gatesRequired": required })).into_response(),
        Err(e) => sspr_error(&e),
    }
}

/// The new password.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Reset {
    new_password: String,
}

pub(super) async fn sspr_reset(
    State(s): State<Shared>,
    Path(flow): Path<String>,
    Body(Reset { new_password: password }): Body<Reset>,
) -> Response {
    let id = match flow_id(&flow) {
        Ok(id) => id,
        Err(r) => return r,
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

pub(super) async fn sspr_unlock(State(s): State<Shared>, Path(flow): Path<String>) -> Response {
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
pub(super) async fn outbox(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let t = s.lock();
    let value: Vec<Value> =
        t.outbox(q.get("to").map(String::as_str)).into_iter().map(|m| serde_json::to_value(m).unwrap_or(Value::Null)).collect();
    Json(json!({ "value": value })).into_response()
}

pub(super) async fn get_sspr_policy(State(s): State<Shared>, headers: HeaderMap) -> Response {
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
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PolicyPatch {
    enabled: Option<EnabledFor>,
    selected_group_id: Option<Uuid>,
    methods_required: Option<u8>,
    email_enabled: Option<bool>,
    mobile_phone_enabled: Option<bool>,
    notify_users_on_password_reset: Option<bool>,
    notify_admins_on_admin_reset: Option<bool>,
}

#[derive(serde::Deserialize)]
pub(super) enum EnabledFor {
    None,
    Selected,
    All,
}

pub(super) async fn patch_sspr_policy(State(s): State<Shared>, headers: HeaderMap, body: Result<Body<PolicyPatch>, Response>) -> Response {
    let p = match admin_body(&s, &headers, body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let invalid = |what: &str| graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &format!("Invalid setting '{what}'."));
    let mut next = s.lock().sspr_policy.clone();
    match (p.enabled, p.selected_group_id) {
        (Some(EnabledFor::Selected), Some(g)) if s.lock().group(&g).is_some() => next.enabled = crate::sspr::Enabled::Selected(g),
        (Some(EnabledFor::Selected), _) => return invalid("selectedGroupId: an existing group's id, with enabled \"Selected\""),
        (_, Some(_)) => return invalid("selectedGroupId: only with enabled \"Selected\""),
        (Some(EnabledFor::None), None) => next.enabled = crate::sspr::Enabled::None,
        (Some(EnabledFor::All), None) => next.enabled = crate::sspr::Enabled::All,
        (None, None) => {}
    }
    match p.methods_required {
        Some(n @ (1 | 2)) => next.methods_required = n,
        Some(_) => return invalid("methodsRequired: 1 or 2"),
        None => {}
    }
    let flags = [
        (p.email_enabled, &mut next.email_enabled),
        (p.mobile_phone_enabled, &mut next.mobile_phone_enabled),
        (p.notify_users_on_password_reset, &mut next.notify_users_on_password_reset),
        (p.notify_admins_on_admin_reset, &mut next.notify_admins_on_admin_reset),
    ];
    for (value, slot) in flags {
        if let Some(v) = value {
            *slot = v;
        }
    }
    s.lock().sspr_policy = next;
    StatusCode::NO_CONTENT.into_response()
}
