//! Identity Protection's risky users (Graph, plus a lab switch that plays a detection and the
//! user-risk policy), and the "Password Rule Settings" directory setting (`/groupSettings`):
//! Password Protection's custom banned list and smart lockout's numbers.

use super::*;
use crate::risk::{RiskLevel, UserRisk};
use crate::settings::PASSWORD_RULE_SETTINGS_TEMPLATE;

fn risky_user_json(u: &User) -> Value {
    json!({
        "id": u.id.to_string(),
        "isDeleted": false,
        "isProcessing": false,
        "riskLastUpdatedDateTime": Value::Null,
        "riskLevel": u.risk.level,
        "riskState": u.risk.state,
        "riskDetail": u.risk.detail,
        "userDisplayName": u.display_name,
        "userPrincipalName": u.user_principal_name,
    })
}

/// Reading risk: IdentityRiskyUser.Read.All for apps; for users also a Global Administrator
/// (the lab's only role among Security Administrator/Operator/Reader and Global Administrator).
fn risk_caller(s: &TenantServer, headers: &HeaderMap, write: bool) -> Result<(), Response> {
    let ok = match caller(s, headers)? {
        Caller::App { roles, .. } => {
            roles.iter().any(|r| r == "IdentityRiskyUser.ReadWrite.All" || (!write && r == "IdentityRiskyUser.Read.All"))
        }
        Caller::User { id, scopes } => {
            scopes.iter().any(|x| x.starts_with("IdentityRiskyUser."))
                && s.lock().user(&id).is_some_and(|u| u.roles.contains(&crate::roles::Role::GlobalAdministrator))
        }
    };
    if ok { Ok(()) } else { Err(insufficient_privileges(s)) }
}

/// `GET /identityProtection/riskyUsers`: every user whose risk is not `none`.
pub(super) async fn list_risky(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = risk_caller(&s, &headers, false) {
        return r;
    }
    let t = s.lock();
    let value: Vec<Value> = t.users().into_iter().filter(|u| u.risk != UserRisk::default()).map(risky_user_json).collect();
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#identityProtection/riskyUsers", s.https_base), "value": value }))
        .into_response()
}

pub(super) async fn get_risky(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = risk_caller(&s, &headers, false) {
        return r;
    }
    let t = s.lock();
    match Uuid::parse_str(&id).ok().and_then(|i| t.user(&i)) {
        Some(u) => Json(risky_user_json(u)).into_response(),
        None => {
            drop(t);
            no_such_resource(&s, &id)
        }
    }
}

/// `{"userIds": [...]}`, all of which must exist before any changes.
fn user_ids(s: &TenantServer, body: &[u8]) -> Result<Vec<Uuid>, Response> {
    let Some(m) = body_json(body) else { return Err(unreadable_json(s)) };
    let bad = || graph_error(s, StatusCode::BAD_REQUEST, "BadRequest", "Invalid value for property 'userIds'.");
    let ids = m.get("userIds").and_then(Value::as_array).filter(|a| !a.is_empty()).ok_or_else(bad)?;
    let t = s.lock();
    ids.iter().map(|v| v.as_str().and_then(|x| Uuid::parse_str(x).ok()).filter(|id| t.user(id).is_some()).ok_or_else(bad)).collect()
}

fn set_risk(s: &TenantServer, headers: &HeaderMap, body: &[u8], risk: UserRisk) -> Response {
    if let Err(r) = risk_caller(s, headers, true) {
        return r;
    }
    let ids = match user_ids(s, body) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    let mut t = s.lock();
    for id in ids {
        t.user_mut(&id).expect("checked").risk = risk;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /identityProtection/riskyUsers/confirmCompromised`: high risk.
pub(super) async fn confirm_compromised(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    set_risk(&s, &headers, &body, UserRisk::confirmed_compromised())
}

/// `POST /identityProtection/riskyUsers/dismiss`.
pub(super) async fn dismiss(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    set_risk(&s, &headers, &body, UserRisk::dismissed())
}

/// `PATCH /lab/identityProtection/riskyUsers/{id}` `{"riskLevel": "low|medium|high|none"}`:
/// plays a detection at that level (Graph has no API for it). A Global Administrator.
pub(super) async fn lab_set_risk(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return bad_body(&s, "risk") };
    let Some(level) = m.get("riskLevel").and_then(Value::as_str).and_then(RiskLevel::parse).filter(|_| m.len() == 1) else {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Expected {\"riskLevel\": \"none\" | \"low\" | \"medium\" | \"high\"}.",
        );
    };
    let mut t = s.lock();
    let Some(u) = t.find_user(&id).map(|u| u.id) else {
        drop(t);
        return no_such_resource(&s, &id);
    };
    t.user_mut(&u).expect("found").risk = UserRisk::detected(level);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn get_risk_policy(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    Json(serde_json::to_value(&s.lock().user_risk_policy).unwrap_or(Value::Null)).into_response()
}

/// `PATCH /lab/identityProtection/userRiskPolicy`: `enabled`, `level` (low|medium|high),
/// `allowOnPremisesChangeToResetRisk`. Checked whole before it applies.
pub(super) async fn patch_risk_policy(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return bad_body(&s, "policy settings") };
    let mut next = s.lock().user_risk_policy.clone();
    for (k, v) in &m {
        match (k.as_str(), v) {
            ("enabled", Value::Bool(b)) => next.enabled = *b,
            ("allowOnPremisesChangeToResetRisk", Value::Bool(b)) => next.allow_on_premises_change_to_reset_risk = *b,
            ("level", Value::String(l)) if RiskLevel::parse(l).is_some_and(|l| l != RiskLevel::None) => {
                next.level = RiskLevel::parse(l).expect("checked")
            }
            _ => return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &format!("Invalid setting '{k}': {v}.")),
        }
    }
    s.lock().user_risk_policy = next;
    StatusCode::NO_CONTENT.into_response()
}

// ----- Password Rule Settings -----

/// `GET /groupSettingTemplates`: the one template the lab knows.
pub(super) async fn setting_templates(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let defaults = crate::settings::PasswordRuleSettings::default().to_graph();
    let values: Vec<Value> = defaults["values"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| json!({ "name": v["name"], "type": if v["name"] == "LockoutThreshold" || v["name"] == "LockoutDurationInSeconds" { "System.Int32" } else if v["name"] == "BannedPasswordList" || v["name"] == "BannedPasswordCheckOnPremisesMode" { "System.String" } else { "System.Boolean" }, "defaultValue": v["value"] }))
        .collect();
    let template = json!({
        "id": PASSWORD_RULE_SETTINGS_TEMPLATE.to_string(),
        "displayName": "Password Rule Settings",
        "description": "Settings for managing tenant-wide password rule settings.",
        "values": values,
    });
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#groupSettingTemplates", s.https_base), "value": [template] })).into_response()
}

pub(super) async fn list_settings(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let t = s.lock();
    let value: Vec<Value> = t.password_rules.id.map(|_| t.password_rules.to_graph()).into_iter().collect();
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#groupSettings", s.https_base), "value": value })).into_response()
}

fn setting_values(s: &TenantServer, m: &serde_json::Map<String, Value>) -> Result<Vec<Value>, Response> {
    match m.get("values") {
        None => Ok(vec![]),
        Some(Value::Array(a)) => Ok(a.clone()),
        Some(_) => Err(graph_error(s, StatusCode::BAD_REQUEST, "Request_BadRequest", "Invalid value for property 'values'.")),
    }
}

/// `POST /groupSettings` `{"templateId", "values": [{"name","value"}]}`: one per tenant.
pub(super) async fn create_setting(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let bad = |msg: &str| graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", msg);
    if m.get("templateId").and_then(Value::as_str).and_then(|t| Uuid::parse_str(t).ok()) != Some(PASSWORD_RULE_SETTINGS_TEMPLATE) {
        return bad("Invalid value for property 'templateId': the lab knows the 'Password Rule Settings' template only.");
    }
    let values = match setting_values(&s, &m) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut t = s.lock();
    if t.password_rules.id.is_some() {
        drop(t);
        return bad("A conflicting object with one or more of the specified property values is present in the directory.");
    }
    let next = match crate::settings::PasswordRuleSettings::default().with_values(&values) {
        Ok(n) => n,
        Err(e) => {
            drop(t);
            return bad(&e);
        }
    };
    let id = t.new_id();
    t.password_rules = crate::settings::PasswordRuleSettings { id: Some(id), ..next };
    let body = t.password_rules.to_graph();
    (StatusCode::CREATED, Json(body)).into_response()
}

fn this_setting(s: &TenantServer, id: &str) -> Result<(), Response> {
    let exists = s.lock().password_rules.id.is_some_and(|x| x.to_string().eq_ignore_ascii_case(id));
    if exists { Ok(()) } else { Err(no_such_resource(s, id)) }
}

pub(super) async fn get_setting(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = global_admin(&s, &headers).and_then(|_| this_setting(&s, &id)) {
        return r;
    }
    Json(s.lock().password_rules.to_graph()).into_response()
}

/// `PATCH /groupSettings/{id}` `{"values": [...]}`: the listed values change, all or none.
pub(super) async fn patch_setting(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = global_admin(&s, &headers).and_then(|_| this_setting(&s, &id)) {
        return r;
    }
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let values = match setting_values(&s, &m) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut t = s.lock();
    match t.password_rules.with_values(&values) {
        Ok(next) => {
            t.password_rules = next;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            drop(t);
            graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &e)
        }
    }
}

/// `DELETE /groupSettings/{id}`: back to the defaults.
pub(super) async fn delete_setting(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = global_admin(&s, &headers).and_then(|_| this_setting(&s, &id)) {
        return r;
    }
    s.lock().password_rules = Default::default();
    StatusCode::NO_CONTENT.into_response()
}
