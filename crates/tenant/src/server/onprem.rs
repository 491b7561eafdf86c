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
    let p = match hybrid_admin_body(&s, &headers, body) {
        Ok(p) => p,
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
    // the blade shows Cloud Sync's checkbox only when a provisioning agent is registered
    v["cloudSyncAgentRegistered"] = json!(s.relay.registered(relay::AgentKind::CloudSync));
    Json(v).into_response()
}

/// The blade's three switches; any other name is refused by name.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct IntegrationPatch {
    write_back_passwords: Option<bool>,
    allow_unlock_without_reset: Option<bool>,
    write_back_graph_change_password: Option<bool>,
    write_back_with_cloud_sync: Option<bool>,
}

/// What the blade says when "Write back passwords with Microsoft Entra Connect cloud sync" is
/// saved with no provisioning agent registered (Microsoft's text is only in a screenshot:
/// these are the lab's words, docs/fidelity.md).
const NO_PROVISIONING_AGENT: &str = "No Microsoft Entra provisioning agent is registered in this tenant. Install and register a provisioning agent (Microsoft Entra Connect cloud sync) before writing back passwords with cloud sync.";

pub(super) async fn patch_integration(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Body<IntegrationPatch>, Response>,
) -> Response {
    let p = match hybrid_admin_body(&s, &headers, body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if p.write_back_with_cloud_sync == Some(true) && !s.relay.registered(relay::AgentKind::CloudSync) {
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", NO_PROVISIONING_AGENT);
    }
    let mut t = s.lock();
    let next = &mut t.on_premises_integration;
    for (value, slot) in [
        (p.write_back_with_cloud_sync, &mut next.write_back_with_cloud_sync),
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

/// `POST /lab/cloudsync/passwordWritebackConfiguration` `{"enable": bool}`: what
/// `Set-AADCloudSyncPasswordWritebackConfiguration -Enable $true|$false -Credential …` does
/// from an agent's server, as a Hybrid Identity Administrator. Enabling turns on both of the
/// blade's checkboxes (and needs a registered provisioning agent); disabling clears only
/// Cloud Sync's, so Connect's writeback keeps running (the tutorial's clean-up).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CloudSyncWriteback {
    enable: bool,
}

pub(super) async fn cloud_sync_writeback(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Result<Body<CloudSyncWriteback>, Response>,
) -> Response {
    let p = match hybrid_admin_body(&s, &headers, body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if p.enable && !s.relay.registered(relay::AgentKind::CloudSync) {
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", NO_PROVISIONING_AGENT);
    }
    let mut t = s.lock();
    let i = &mut t.on_premises_integration;
    if p.enable {
        i.write_back_passwords = true;
    }
    i.write_back_with_cloud_sync = p.enable;
    let v = serde_json::to_value(&*i).unwrap_or(Value::Null);
    Json(v).into_response()
}
