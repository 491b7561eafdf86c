//! The on-premises side's settings: Graph's `onPremisesSynchronization` features and the lab's
//! stand-in for SSPR's "On-premises integration" blade.

use super::*;

pub(super) fn sync_object(t: &Tenant) -> Value {
    json!({ "id": t.id.to_string(), "configuration": {}, "features": serde_json::to_value(&t.sync_features).unwrap_or(Value::Null) })
}

pub(super) async fn get_sync(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    let value = vec![sync_object(&s.lock())];
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#directory/onPremisesSynchronization", s.https_base), "value": value }))
        .into_response()
}

pub(super) async fn get_sync_one(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    if id != s.tenant_id().to_string() {
        return no_such_resource(&s, &id.to_string());
    }
    let mut obj = sync_object(&s.lock());
    obj["@odata.context"] = json!(format!("{}/v1.0/$metadata#directory/onPremisesSynchronization/$entity", s.https_base));
    Json(obj).into_response()
}

/// `PATCH .../onPremisesSynchronization/{id}` with `{"features": {"<name>Enabled": bool}}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SyncPatch {
    features: std::collections::BTreeMap<String, bool>,
}

pub(super) async fn patch_sync(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Body<SyncPatch>, Response>,
) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    let p = match body {
        Ok(Body(p)) => p,
        Err(r) => return r,
    };
    if id != s.tenant_id().to_string() {
        return no_such_resource(&s, &id.to_string());
    }
    // Check everything, then apply: a refused request changes nothing.
    let mut next = s.lock().sync_features.clone();
    for (name, on) in p.features {
        if !next.set(&name, on) {
            return graph_error(
                &s,
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!(
                    "Property '{name}' is not kept by the lab (known: passwordSyncEnabled, passwordWritebackEnabled, userForcePasswordChangeOnLogonEnabled, cloudPasswordPolicyForPasswordSyncedUsersEnabled)."
                ),
            );
        }
    }
    s.lock().sync_features = next;
    StatusCode::NO_CONTENT.into_response()
}

/// The lab's endpoint for SSPR's "On-premises integration" blade (Graph has no public API).
pub(super) async fn get_integration(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    let t = s.lock();
    let mut v = serde_json::to_value(&t.on_premises_integration).unwrap_or(Value::Null);
    // Writeback works only when the sync side is on too.
    v["writebackEnabled"] = json!(t.writeback_enabled());
    Json(v).into_response()
}

/// The blade's three switches; any other name is refused by name.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct IntegrationPatch {
    write_back_passwords: Option<bool>,
    allow_unlock_without_reset: Option<bool>,
    write_back_graph_change_password: Option<bool>,
}

pub(super) async fn patch_integration(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Body<IntegrationPatch>, Response>,
) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    let p = match body {
        Ok(Body(p)) => p,
        Err(r) => return r,
    };
    let mut t = s.lock();
    let next = &mut t.on_premises_integration;
    for (value, slot) in [
        (p.write_back_passwords, &mut next.write_back_passwords),
        (p.allow_unlock_without_reset, &mut next.allow_unlock_without_reset),
        (p.write_back_graph_change_password, &mut next.write_back_graph_change_password),
    ] {
        if let Some(on) = value {
            *slot = on;
        }
    }
    StatusCode::NO_CONTENT.into_response()
}
