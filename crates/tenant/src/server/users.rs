//! `/users` and `/me`: reading, creating, editing, licensing and deleting users, with
//! `$select` and `$filter` as Graph takes them.

use super::*;

/// The properties Graph returns for a user when `$select` names none.
pub(super) const DEFAULT_USER_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

pub(super) fn user_json(u: &User) -> serde_json::Map<String, Value> {
    let on = u.on_premises.as_ref();
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("businessPhones", json!([]));
    put("displayName", json!(u.display_name));
    put("givenName", json!(u.given_name));
    put("jobTitle", Value::Null);
    put("mail", json!(u.mail));
    put("mobilePhone", Value::Null);
    put("officeLocation", Value::Null);
    put("preferredLanguage", Value::Null);
    put("surname", json!(u.surname));
    put("userPrincipalName", json!(u.user_principal_name));
    put("id", json!(u.id.to_string()));
    put("accountEnabled", json!(u.account_enabled));
    put("onPremisesSyncEnabled", if on.is_some() { json!(true) } else { Value::Null });
    put("onPremisesImmutableId", json!(on.map(|o| &o.immutable_id)));
    put("onPremisesSamAccountName", json!(on.map(|o| &o.sam_account_name)));
    put("onPremisesUserPrincipalName", json!(on.map(|o| &o.user_principal_name)));
    put("onPremisesDomainName", json!(on.map(|o| &o.domain_name)));
    put("onPremisesDistinguishedName", json!(on.map(|o| &o.distinguished_name)));
    put("onPremisesSecurityIdentifier", json!(on.map(|o| &o.security_identifier)));
    put("passwordPolicies", if u.password_policies.is_empty() { Value::Null } else { json!(u.password_policies.join(", ")) });
    put("assignedLicenses", json!(u.licenses.iter().map(|l| json!({ "disabledPlans": [], "skuId": l.to_string() })).collect::<Vec<_>>()));
    put(
        "lastPasswordChangeDateTime",
        json!(u.last_password_change.format(&clock::format_description::well_known::Rfc3339).unwrap_or_default()),
    );
    m
}

/// `$select`: the listed properties (Graph rejects unknown ones); otherwise the defaults.
pub(super) fn select(s: &TenantServer, u: &User, sel: Option<&str>) -> Result<Value, Response> {
    let all = user_json(u);
    let names: Vec<&str> = match sel {
        Some(s) => s.split(',').map(str::trim).filter(|x| !x.is_empty()).collect(),
        None => DEFAULT_USER_PROPERTIES.to_vec(),
    };
    let mut out = serde_json::Map::new();
    for n in names {
        let Some((k, v)) = all.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)) else {
            return Err(graph_error(
                s,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("Could not find a property named '{n}' on type 'Microsoft.DirectoryServices.User'."),
            ));
        };
        out.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(out))
}

pub(super) fn context(s: &TenantServer, sel: Option<&str>, entity: bool) -> String {
    let cols = sel.map(|c| format!("({c})")).unwrap_or_default();
    format!("{}/v1.0/$metadata#users{cols}{}", s.https_base, if entity { "/$entity" } else { "" })
}

pub(super) async fn me(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Caller::User { id, .. } = c else {
        return graph_error(&s, StatusCode::BAD_REQUEST, "BadRequest", "/me request is only valid with delegated authentication flow.");
    };
    let t = s.lock();
    let Some(u) = t.user(&id) else {
        return no_such_resource(&s, &id.to_string());
    };
    entity(&s, u, q.get("$select").map(String::as_str))
}

pub(super) fn entity(s: &TenantServer, u: &User, sel: Option<&str>) -> Response {
    match select(s, u, sel) {
        Ok(Value::Object(mut m)) => {
            let mut out = serde_json::Map::new();
            out.insert("@odata.context".into(), json!(context(s, sel, true)));
            out.append(&mut m);
            Json(Value::Object(out)).into_response()
        }
        Ok(_) => graph_error(s, StatusCode::INTERNAL_SERVER_ERROR, "generalException", "unexpected shape"),
        Err(r) => r,
    }
}

pub(super) async fn get_user(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if id == "$count" {
        if !c.may_read_users() {
            return insufficient_privileges(&s);
        }
        let items: Vec<Value> = s.lock().users().into_iter().map(|u| Value::Object(user_json(u))).collect();
        return query::count(&s, &headers, &q, items, &query::USERS);
    }
    let t = s.lock();
    let own = matches!(&c, Caller::User { id: me, .. } if t.find_user(&id).is_some_and(|u| u.id == *me));
    if !own && !c.may_read_users() {
        return insufficient_privileges(&s);
    }
    let Some(u) = t.find_user(&id) else {
        return no_such_resource(&s, &id.to_string());
    };
    entity(&s, u, q.get("$select").map(String::as_str))
}

pub(super) async fn list_users(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !c.may_read_users() {
        return insufficient_privileges(&s);
    }
    let items: Vec<Value> = s.lock().users().into_iter().map(|u| Value::Object(user_json(u))).collect();
    query::collection(&s, &headers, &q, items, &query::USERS, "/v1.0/users", "users")
}

/// Graph's message for any password the policy refuses (it does not say which rule).
pub(super) const COMPLEXITY_MESSAGE: &str =
    "The specified password does not comply with password complexity requirements. Please provide a different password.";

/// `PATCH /users/{id}`: profile properties and/or a passwordProfile (an administrator's
/// reset). The whole body is checked, and every refusal found, before anything changes.
pub(super) async fn patch_user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let c = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let bad = |m: &str| graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", m);
    let Ok(Value::Object(props)) = serde_json::from_slice::<Value>(&body) else {
        return unreadable_json(&s);
    };
    let (edit, reset) = match parse_user_patch(&props) {
        Ok(x) => x,
        Err(m) => return bad(&m),
    };
    if edit.is_empty() && reset.is_none() {
        return bad("Nothing to update.");
    }
    let may_write = match &c {
        Caller::User { scopes, .. } => scopes
            .iter()
            .any(|x| matches!(x.as_str(), "Directory.AccessAsUser.All" | "User.ReadWrite.All" | "User-PasswordProfile.ReadWrite.All")),
        Caller::App { roles, .. } => roles.iter().any(|r| r == "User.ReadWrite.All" || r == "Directory.ReadWrite.All"),
    };
    if !may_write {
        return insufficient_privileges(&s);
    }
    let actor = match &c {
        Caller::User { id, .. } => Actor::User(*id),
        Caller::App { id, .. } => Actor::App(*id),
    };
    let mut t = s.lock();
    let Some(target) = t.find_user(&id).map(|u| u.id) else {
        drop(t);
        return no_such_resource(&s, &id.to_string());
    };
    if !edit.is_empty() {
        if !t.may_manage(actor, target) {
            drop(t);
            return insufficient_privileges(&s);
        }
        if t.user(&target).is_some_and(|u| u.synced()) && edit.touches_synced_properties() {
            drop(t);
            return bad(SYNCED_PROPERTY_MESSAGE);
        }
    }
    if let Some((password, force)) = reset {
        let refusal = match t.admin_reset(actor, target, &password, force) {
            Ok(()) => None,
            Err(ResetError::Forbidden) => Some(insufficient_privileges(&s)),
            Err(ResetError::NotFound) => Some(no_such_resource(&s, &id.to_string())),
            Err(ResetError::Policy(_)) => Some(bad(COMPLEXITY_MESSAGE)),
            Err(ResetError::PasswordRequired) => Some(bad("Invalid value for property 'passwordProfile.password'.")),
        };
        if let Some(r) = refusal {
            return r;
        }
    }
    if !edit.is_empty() {
        // checked above: cannot fail now
        let _ = t.update_user(actor, target, edit);
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) const SYNCED_PROPERTY_MESSAGE: &str =
    "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.";

/// The properties `PATCH /users/{id}` takes, with their types checked.
pub(super) fn parse_user_patch(
    props: &serde_json::Map<String, Value>,
) -> Result<(crate::directory::ProfileEdit, Option<(String, bool)>), String> {
    let mut edit = crate::directory::ProfileEdit::default();
    let mut reset = None;
    let invalid = |k: &str| format!("Invalid value specified for property '{k}' of resource 'User'.");
    let text = |k: &str, v: &Value| match v {
        Value::Null => Ok(None),
        Value::String(x) => Ok(Some(x.clone())),
        _ => Err(invalid(k)),
    };
    for (k, v) in props {
        match k.as_str() {
            "displayName" => edit.display_name = Some(v.as_str().filter(|x| !x.trim().is_empty()).ok_or_else(|| invalid(k))?.to_string()),
            "givenName" => edit.given_name = Some(text(k, v)?),
            "surname" => edit.surname = Some(text(k, v)?),
            "mail" => edit.mail = Some(text(k, v)?),
            "accountEnabled" => edit.account_enabled = Some(v.as_bool().ok_or_else(|| invalid(k))?),
            "passwordPolicies" => {
                let list: Vec<String> = match text(k, v)? {
                    None => vec![],
                    Some(x) => x.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "None").map(str::to_string).collect(),
                };
                if list.iter().any(|p| p != "DisablePasswordExpiration" && p != "DisableStrongPassword") {
                    return Err(invalid(k));
                }
                edit.password_policies = Some(list);
            }
            "passwordProfile" => {
                let profile = v.as_object().ok_or("Invalid value for property 'passwordProfile'.")?;
                if let Some(other) = profile
                    .keys()
                    .find(|k| !matches!(k.as_str(), "password" | "forceChangePasswordNextSignIn" | "forceChangePasswordNextSignInWithMfa"))
                {
                    return Err(format!("Property '{other}' does not exist as a declared property or extension property."));
                }
                let password =
                    profile.get("password").and_then(Value::as_str).ok_or("Invalid value for property 'passwordProfile.password'.")?;
                let force = match profile.get("forceChangePasswordNextSignIn") {
                    None => true,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err("Invalid value for property 'forceChangePasswordNextSignIn'.".into()),
                };
                reset = Some((password.to_string(), force));
            }
            other => {
                return Err(format!(
                    "Property '{other}' cannot be updated in the lab (supported: displayName, givenName, surname, mail, accountEnabled, passwordPolicies, passwordProfile)."
                ));
            }
        }
    }
    Ok((edit, reset))
}

/// Creating and deleting users: an app with User.ReadWrite.All, or a delegated User
/// Administrator or Global Administrator.
pub(super) fn user_manager(s: &TenantServer, headers: &HeaderMap) -> Result<(), Response> {
    use crate::roles::Role;
    let ok = match caller(s, headers)? {
        Caller::App { roles, .. } => roles.iter().any(|r| r == "User.ReadWrite.All" || r == "Directory.ReadWrite.All"),
        Caller::User { id, .. } => {
            s.lock().user(&id).is_some_and(|u| u.roles.iter().any(|r| matches!(r, Role::GlobalAdministrator | Role::UserAdministrator)))
        }
    };
    if ok { Ok(()) } else { Err(insufficient_privileges(s)) }
}

/// `POST /users`: accountEnabled, displayName, mailNickname, userPrincipalName and
/// passwordProfile are required, as in Graph; the UPN's domain must be verified and unused;
/// the password meets the cloud rules and Password Protection.
pub(super) async fn create_user(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = user_manager(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else {
        return unreadable_json(&s);
    };
    let invalid = |p: &str| {
        graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("Invalid value specified for property '{p}' of resource 'User'."),
        )
    };
    let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string).filter(|v| !v.trim().is_empty());
    let Some(enabled) = m.get("accountEnabled").and_then(Value::as_bool) else { return invalid("accountEnabled") };
    let Some(display_name) = text("displayName") else { return invalid("displayName") };
    if text("mailNickname").is_none() {
        return invalid("mailNickname");
    }
    let Some(upn) = text("userPrincipalName") else { return invalid("userPrincipalName") };
    let Some(password) = m.get("passwordProfile").and_then(|p| p.get("password")).and_then(Value::as_str).map(str::to_string) else {
        return invalid("passwordProfile");
    };
    let force = m.get("passwordProfile").and_then(|p| p.get("forceChangePasswordNextSignIn")).and_then(Value::as_bool).unwrap_or(true);
    let mut t = s.lock();
    if t.quota_reached() {
        drop(t);
        return quota_exceeded(&s);
    }
    if !t.verified_domain(&upn) {
        drop(t);
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        );
    }
    if t.upn_taken(&upn) {
        drop(t);
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Another object with the same value for property userPrincipalName already exists.",
        );
    }
    let candidate = crate::directory::NewUser {
        user_principal_name: upn.clone(),
        display_name,
        given_name: text("givenName"),
        surname: text("surname"),
        mail: text("mail"),
        account_enabled: enabled,
        ..Default::default()
    };
    // the password is checked against the new user's own names, before anything exists
    let probe = User::probe(&candidate);
    if t.check_new_password(&probe, &password).is_err() {
        drop(t);
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", COMPLEXITY_MESSAGE);
    }
    let id = t.add_user(crate::directory::NewUser { password: Some(password), ..candidate });
    if force {
        t.user_mut(&id).expect("just added").force_change_password_next_sign_in = true;
    }
    let u = t.user(&id).expect("just added").clone();
    drop(t);
    let Ok(Value::Object(mut v)) = select(&s, &u, None) else {
        return graph_error(&s, StatusCode::INTERNAL_SERVER_ERROR, "generalException", "unexpected shape");
    };
    v.insert("@odata.context".into(), json!(context(&s, None, true)));
    let location = format!("{}/v1.0/users/{}", s.base_for(&headers), u.id);
    (StatusCode::CREATED, [(header::LOCATION, location)], Json(Value::Object(v))).into_response()
}

/// `POST /users/{id}/assignLicense {"addLicenses": [{"skuId"}], "removeLicenses": [skuId]}`.
pub(super) async fn assign_license(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = user_manager(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else {
        return unreadable_json(&s);
    };
    let sku = |v: &Value| v.as_str().and_then(|x| Uuid::parse_str(x).ok());
    let add: Option<Vec<Uuid>> = m
        .get("addLicenses")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|l| l.get("skuId").and_then(sku)).collect::<Option<_>>())
        .unwrap_or(None);
    let remove: Option<Vec<Uuid>> =
        m.get("removeLicenses").and_then(Value::as_array).map(|a| a.iter().map(sku).collect::<Option<_>>()).unwrap_or(None);
    let (Some(add), Some(remove)) = (add, remove) else {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid value specified for property 'addLicenses' or 'removeLicenses' of resource 'User'.",
        );
    };
    let known = [crate::directory::SKU_ENTRA_ID_P1, crate::directory::SKU_ENTRA_ID_P2];
    if let Some(unknown) = add.iter().find(|l| !known.contains(l)) {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("License {unknown} does not correspond to a valid company License."),
        );
    }
    let mut t = s.lock();
    let Some(uid) = t.find_user(&id).map(|u| u.id) else {
        drop(t);
        return no_such_resource(&s, &id);
    };
    let u = t.user_mut(&uid).expect("found");
    u.licenses.retain(|l| !remove.contains(l));
    for l in add {
        if !u.licenses.contains(&l) {
            u.licenses.push(l);
        }
    }
    let u = u.clone();
    drop(t);
    entity(&s, &u, None)
}

pub(super) async fn delete_user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = user_manager(&s, &headers) {
        return r;
    }
    let mut t = s.lock();
    let Some(uid) = t.find_user(&id).map(|u| u.id) else {
        drop(t);
        return no_such_resource(&s, &id);
    };
    t.delete_user(&uid);
    StatusCode::NO_CONTENT.into_response()
}
