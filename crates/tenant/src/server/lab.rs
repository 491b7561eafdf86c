//! The lab's own control surface over HTTP, for what no real product has an API for and a
//! trainee or a scenario runner does to the lab itself: the lab clock. (The clock is the
//! whole lab's: the AD DS and the tenant share it.)

use super::*;

fn now_json(s: &TenantServer) -> Value {
    let now = s.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default();
    json!({ "now": now, "frozen": s.clock.is_frozen() })
}

/// `GET /lab/clock`: `{"now", "frozen"}`; anyone may read it.
pub(super) async fn get_clock(State(s): State<Shared>) -> Response {
    Json(now_json(&s)).into_response()
}

/// `POST /lab/clock` `{"advance": "2d"}` (s, m, h, d, w units): moves the lab clock forward.
/// A Global Administrator, as for the other lab settings.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Advance {
    advance: String,
}

pub(super) async fn advance_clock(State(s): State<Shared>, headers: HeaderMap, body: Result<Body<Advance>, Response>) -> Response {
    let Advance { advance } = match admin_body(&s, &headers, body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match clock::parse_duration(&advance) {
        Ok(by) => s.clock.advance(by),
        Err(e) => return graph_error(&s, StatusCode::BAD_REQUEST, "BadRequest", &e),
    }
    Json(now_json(&s)).into_response()
}

// ----- role assignments (Graph's unified RBAC API) -----

fn assignment_json(role: crate::roles::Role, principal: Uuid) -> Value {
    json!({
        "id": format!("{}_{principal}", role.template_id()),
        "principalId": principal.to_string(),
        "roleDefinitionId": role.template_id(),
        "directoryScopeId": "/",
    })
}

/// `GET /roleManagement/directory/roleAssignments[?$filter=principalId eq '…']`.
pub(super) async fn list_assignments(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Err(r) = role_manager(&s, &headers, false) {
        return r;
    }
    let want = q.get("$filter").and_then(|f| f.strip_prefix("principalId eq '")).and_then(|f| f.strip_suffix('\''));
    let t = s.lock();
    let value: Vec<Value> = t
        .users()
        .into_iter()
        .filter(|u| want.is_none_or(|w| u.id.to_string().eq_ignore_ascii_case(w)))
        .flat_map(|u| u.roles.iter().map(move |r| assignment_json(*r, u.id)))
        .collect();
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#roleManagement/directory/roleAssignments", s.https_base), "value": value }))
        .into_response()
}

/// Assigning roles: a Global Administrator (the lab has no Privileged Role Administrator);
/// reading them also an app with RoleManagement.Read.Directory or Directory.Read.All.
fn role_manager(s: &TenantServer, headers: &HeaderMap, write: bool) -> Result<(), Response> {
    let ok = match caller(s, headers)? {
        Caller::User { id, .. } => s.lock().user(&id).is_some_and(|u| u.roles.contains(&crate::roles::Role::GlobalAdministrator)),
        Caller::App { roles, .. } => {
            !write && roles.iter().any(|r| matches!(r.as_str(), "RoleManagement.Read.Directory" | "Directory.Read.All"))
        }
    };
    if ok { Ok(()) } else { Err(insufficient_privileges(s)) }
}

/// `POST /roleManagement/directory/roleAssignments` `{"principalId", "roleDefinitionId"
/// (a role template id), "directoryScopeId": "/"}` → `201`.
pub(super) async fn create_assignment(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = role_manager(&s, &headers, true) {
        return r;
    }
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let bad = |msg: &str| graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", msg);
    if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "principalId" | "roleDefinitionId" | "directoryScopeId" | "@odata.type")) {
        return bad(&format!("Property '{k}' does not exist as a declared property or extension property."));
    }
    if m.get("directoryScopeId").and_then(Value::as_str) != Some("/") {
        return bad("The lab assigns roles at the tenant scope only (directoryScopeId \"/\").");
    }
    let role = m
        .get("roleDefinitionId")
        .and_then(Value::as_str)
        .and_then(|id| crate::roles::Role::ALL.into_iter().find(|r| r.template_id() == id));
    let Some(role) = role else { return bad("Invalid value for property 'roleDefinitionId'.") };
    let principal = m.get("principalId").and_then(Value::as_str).and_then(|p| Uuid::parse_str(p).ok());
    let mut t = s.lock();
    let Some(user) = principal.and_then(|p| t.user_mut(&p)) else {
        drop(t);
        return bad("Invalid value for property 'principalId'.");
    };
    if user.roles.contains(&role) {
        drop(t);
        return bad("A conflicting object with one or more of the specified property values is present in the directory.");
    }
    user.roles.push(role);
    let body = assignment_json(role, user.id);
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `DELETE /roleManagement/directory/roleAssignments/{id}`.
pub(super) async fn delete_assignment(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = role_manager(&s, &headers, true) {
        return r;
    }
    let parsed = id.split_once('_').and_then(|(r, p)| {
        let role = crate::roles::Role::ALL.into_iter().find(|x| x.template_id() == r)?;
        Some((role, Uuid::parse_str(p).ok()?))
    });
    let mut t = s.lock();
    let removed = parsed.and_then(|(role, p)| t.user_mut(&p).map(|u| (role, u))).is_some_and(|(role, u)| {
        let before = u.roles.len();
        u.roles.retain(|r| *r != role);
        u.roles.len() < before
    });
    drop(t);
    if removed { StatusCode::NO_CONTENT.into_response() } else { no_such_resource(&s, &id) }
}
