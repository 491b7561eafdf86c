//! Graph's groups: list, create, read, delete, and members by `$ref` — what SSPR's
//! "Selected" scope and role-assignable groups need.

use super::*;
use crate::groups::{Group, MemberError};
use crate::roles::Role;

fn group_json(g: &Group) -> Value {
    json!({
        "id": g.id.to_string(),
        "displayName": g.display_name,
        "description": g.description,
        "mailNickname": g.mail_nickname,
        "mailEnabled": false,
        "securityEnabled": g.security_enabled,
        "isAssignableToRole": g.is_assignable_to_role,
        "groupTypes": [],
    })
}

fn may_read(c: &Caller) -> bool {
    match c {
        Caller::User { scopes, .. } => {
            scopes.iter().any(|x| matches!(x.as_str(), "Directory.AccessAsUser.All" | "Group.Read.All" | "Directory.Read.All"))
        }
        Caller::App { roles, .. } => roles
            .iter()
            .any(|r| matches!(r.as_str(), "Group.Read.All" | "Group.ReadWrite.All" | "Directory.Read.All" | "Directory.ReadWrite.All")),
    }
}

/// Who may change groups: an app with Group.ReadWrite.All, or a Global or User
/// Administrator; role-assignable groups only a Global Administrator (the lab has no
/// Privileged Role Administrator).
fn may_write(s: &TenantServer, c: &Caller, role_assignable: bool) -> bool {
    match c {
        Caller::App { roles, .. } => {
            !role_assignable && roles.iter().any(|r| matches!(r.as_str(), "Group.ReadWrite.All" | "Directory.ReadWrite.All"))
        }
        Caller::User { id, .. } => s.lock().user(id).is_some_and(|u| {
            u.roles.contains(&Role::GlobalAdministrator) || (!role_assignable && u.roles.contains(&Role::UserAdministrator))
        }),
    }
}

/// Every group, for a caller who may read them.
fn readable_groups(s: &TenantServer, headers: &HeaderMap) -> Result<Vec<Value>, Response> {
    if !may_read(&caller(s, headers)?) {
        return Err(insufficient_privileges(s));
    }
    Ok(s.lock().groups().into_iter().map(group_json).collect())
}

pub(super) async fn list_groups(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    match readable_groups(&s, &headers) {
        Ok(items) => query::collection(&s, &headers, &q, items, &query::GROUPS, "/v1.0/groups", "groups"),
        Err(r) => r,
    }
}

/// `GET /groups/$count` (an advanced query).
pub(super) async fn count_groups(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    match readable_groups(&s, &headers) {
        Ok(items) => query::count(&s, &headers, &q, items, &query::GROUPS),
        Err(r) => r,
    }
}

/// The groups a user (or group) is in — directly (`memberOf`) or through nesting
/// (`transitiveMemberOf`) — and the directory roles a user holds, as Graph lists them.
fn member_of(t: &Tenant, member: Uuid, transitive: bool) -> Vec<Value> {
    let mut out: Vec<Value> = t
        .groups()
        .into_iter()
        .filter(|g| if transitive { t.is_member_of(g.id, member) } else { g.members.contains(&member) })
        .map(|g| {
            let mut v = group_json(g);
            v["@odata.type"] = json!("#microsoft.graph.group");
            v
        })
        .collect();
    if let Some(u) = t.user(&member) {
        for r in &u.roles {
            out.push(json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": crate::directory::derived_id(t.id, r.template_id()).to_string(),
                "displayName": r.display_name(),
                "description": null,
                "roleTemplateId": r.template_id(),
            }));
        }
    }
    out
}

/// Who the path names: `me` or a user by id or userPrincipalName; the caller may read it
/// (their own, or with a directory read permission).
fn readable_user(s: &TenantServer, headers: &HeaderMap, key: &str) -> Result<Uuid, Response> {
    let c = caller(s, headers)?;
    let t = s.lock();
    let target = match (key, &c) {
        ("me", Caller::User { id, .. }) => Some(*id),
        ("me", Caller::App { .. }) => {
            drop(t);
            return Err(graph_error(
                s,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            ));
        }
        _ => t.find_user(key).map(|u| u.id),
    };
    let Some(target) = target else {
        drop(t);
        return Err(no_such_resource(s, key));
    };
    let own = matches!(&c, Caller::User { id, .. } if *id == target);
    drop(t);
    if !own && !c.may_read_users() {
        return Err(insufficient_privileges(s));
    }
    Ok(target)
}

/// `GET /users/{id}/memberOf`, `/me/memberOf`.
pub(super) async fn user_member_of(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    memberships(&s, &headers, &key, &q, false)
}

/// `GET /users/{id}/transitiveMemberOf`, `/me/transitiveMemberOf`.
pub(super) async fn user_transitive_member_of(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    memberships(&s, &headers, &key, &q, true)
}

pub(super) async fn me_member_of(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    memberships(&s, &headers, "me", &q, false)
}

pub(super) async fn me_transitive_member_of(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    memberships(&s, &headers, "me", &q, true)
}

fn memberships(s: &TenantServer, headers: &HeaderMap, key: &str, q: &HashMap<String, String>, transitive: bool) -> Response {
    let id = match readable_user(s, headers, key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let items = member_of(&s.lock(), id, transitive);
    let what = if transitive { "transitiveMemberOf" } else { "memberOf" };
    query::collection(s, headers, q, items, &query::GROUPS, &format!("/v1.0/users/{id}/{what}"), "directoryObjects")
}

/// `POST /users/{id}/checkMemberGroups {"groupIds": [...]}` (at most 20): those of the
/// groups the user is in, directly or not. `POST …/getMemberObjects {"securityEnabledOnly"}`:
/// every group and directory role the user is in. Also under `/me`.
pub(super) async fn check_member_groups(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    member_check(&s, &headers, &key, &body, true)
}

pub(super) async fn get_member_objects(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    member_check(&s, &headers, &key, &body, false)
}

pub(super) async fn me_check_member_groups(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    member_check(&s, &headers, "me", &body, true)
}

pub(super) async fn me_get_member_objects(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    member_check(&s, &headers, "me", &body, false)
}

fn member_check(s: &TenantServer, headers: &HeaderMap, key: &str, body: &[u8], check: bool) -> Response {
    let id = match readable_user(s, headers, key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(m) = body_json(body) else { return unreadable_json(s) };
    let bad = |m: &str| graph_error(s, StatusCode::BAD_REQUEST, "Request_BadRequest", m);
    let t = s.lock();
    let all = member_of(&t, id, true);
    let ids = |v: &[Value]| v.iter().filter_map(|x| x["id"].as_str().map(str::to_string)).collect::<Vec<_>>();
    let value = if check {
        let Some(asked) = m.get("groupIds").and_then(Value::as_array) else { return bad("Invalid value for property 'groupIds'.") };
        if asked.len() > 20 {
            return bad("The number of group IDs in the request exceeds the limit of 20.");
        }
        let mine = ids(&all);
        asked.iter().filter_map(Value::as_str).filter(|g| mine.iter().any(|x| x.eq_ignore_ascii_case(g))).map(str::to_string).collect()
    } else {
        let Some(security_only) = m.get("securityEnabledOnly").and_then(Value::as_bool) else {
            return bad("Invalid value for property 'securityEnabledOnly'.");
        };
        let kept: Vec<Value> = all.into_iter().filter(|x| !security_only || x["securityEnabled"] != json!(false)).collect();
        ids(&kept)
    };
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#Collection(Edm.String)", s.https_base), "value": value })).into_response()
}

/// `POST /groups`: displayName, mailEnabled (false), mailNickname and securityEnabled are
/// required, as in Graph; `isAssignableToRole` optional.
pub(super) async fn create_group(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let bad = |msg: &str| graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", msg);
    let known = ["displayName", "mailEnabled", "mailNickname", "securityEnabled", "description", "isAssignableToRole", "groupTypes"];
    if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
        return bad(&format!("Property '{k}' does not exist as a declared property or extension property."));
    }
    for (k, want) in [("displayName", "string"), ("mailNickname", "string"), ("mailEnabled", "bool"), ("securityEnabled", "bool")] {
        let ok = match want {
            "string" => m.get(k).and_then(Value::as_str).is_some_and(|v| !v.trim().is_empty()),
            _ => m.get(k).is_some_and(Value::is_boolean),
        };
        if !ok {
            return bad(&format!("Invalid value specified for property '{k}' of resource 'Group'."));
        }
    }
    if m["mailEnabled"] == json!(true) || m["securityEnabled"] == json!(false) {
        return bad("The lab creates security groups only (mailEnabled false, securityEnabled true).");
    }
    let assignable = match m.get("isAssignableToRole") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad("Invalid value specified for property 'isAssignableToRole' of resource 'Group'."),
    };
    if !may_write(&s, &c, assignable) {
        return insufficient_privileges(&s);
    }
    let spec = Group {
        id: Uuid::nil(),
        display_name: m["displayName"].as_str().unwrap_or_default().to_string(),
        mail_nickname: m["mailNickname"].as_str().unwrap_or_default().to_string(),
        description: m.get("description").and_then(Value::as_str).map(str::to_string),
        security_enabled: true,
        is_assignable_to_role: assignable,
        members: vec![],
    };
    let mut t = s.lock();
    if t.quota_reached() {
        drop(t);
        return quota_exceeded(&s);
    }
    let id = t.add_group(spec);
    let mut body = group_json(t.group(&id).expect("just added"));
    drop(t);
    body["@odata.context"] = json!(format!("{}/v1.0/$metadata#groups/$entity", s.https_base));
    (StatusCode::CREATED, Json(body)).into_response()
}

fn group_id(s: &TenantServer, key: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(key).ok().filter(|id| s.lock().group(id).is_some()).ok_or_else(|| no_such_resource(s, key))
}

/// The group a read names, when the caller may read groups.
fn readable_group(s: &TenantServer, headers: &HeaderMap, key: &str) -> Result<Uuid, Response> {
    if !may_read(&caller(s, headers)?) {
        return Err(insufficient_privileges(s));
    }
    group_id(s, key)
}

pub(super) async fn get_group(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let id = match readable_group(&s, &headers, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let mut body = group_json(s.lock().group(&id).expect("checked"));
    body["@odata.context"] = json!(format!("{}/v1.0/$metadata#groups/$entity", s.https_base));
    Json(body).into_response()
}

/// The group a change names, when the caller may change it.
fn writable_group(s: &TenantServer, headers: &HeaderMap, key: &str) -> Result<Uuid, Response> {
    let c = caller(s, headers)?;
    let id = group_id(s, key)?;
    let assignable = s.lock().group(&id).is_some_and(|g| g.is_assignable_to_role);
    if may_write(s, &c, assignable) { Ok(id) } else { Err(insufficient_privileges(s)) }
}

pub(super) async fn delete_group(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let id = match writable_group(&s, &headers, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    s.lock().delete_group(&id);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn list_members(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>) -> Response {
    let id = match readable_group(&s, &headers, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let t = s.lock();
    let value: Vec<Value> = t
        .group(&id)
        .expect("checked")
        .members
        .iter()
        .filter_map(|m| {
            if let Some(u) = t.user(m) {
                Some(json!({ "@odata.type": "#microsoft.graph.user", "id": u.id.to_string(), "displayName": u.display_name, "userPrincipalName": u.user_principal_name }))
            } else {
                t.group(m).map(|g| {
                    let mut v = group_json(g);
                    v["@odata.type"] = json!("#microsoft.graph.group");
                    v
                })
            }
        })
        .collect();
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#directoryObjects", s.https_base), "value": value })).into_response()
}

fn member_error(s: &TenantServer, e: MemberError, member: &str) -> Response {
    let bad = |m: &str| graph_error(s, StatusCode::BAD_REQUEST, "Request_BadRequest", m);
    match e {
        MemberError::NoSuchGroup | MemberError::NoSuchObject | MemberError::NotMember => no_such_resource(s, member),
        MemberError::AlreadyMember => {
            bad("One or more added object references already exist for the following modified properties: 'members'.")
        }
        MemberError::NestingNotAllowed => bad("Nesting is currently not supported for groups that can be assigned to a role."),
    }
}

/// `POST /groups/{id}/members/$ref` `{"@odata.id": ".../directoryObjects/{id}"}`.
pub(super) async fn add_member(State(s): State<Shared>, headers: HeaderMap, Path(key): Path<String>, body: axum::body::Bytes) -> Response {
    let id = match writable_group(&s, &headers, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let Some(reference) = m.get("@odata.id").and_then(Value::as_str) else {
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", "Invalid object identifier: '@odata.id' is required.");
    };
    let tail = reference.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let Ok(member) = Uuid::parse_str(tail) else {
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &format!("Invalid object identifier '{tail}'."));
    };
    let outcome = s.lock().add_member(id, member);
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => member_error(&s, e, tail),
    }
}

/// `DELETE /groups/{id}/members/{memberId}/$ref`.
pub(super) async fn remove_member(State(s): State<Shared>, headers: HeaderMap, Path((key, member)): Path<(String, String)>) -> Response {
    let id = match writable_group(&s, &headers, &key) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Ok(member_id) = Uuid::parse_str(&member) else { return no_such_resource(&s, &member) };
    let outcome = s.lock().remove_member(id, member_id);
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => member_error(&s, e, &member),
    }
}
