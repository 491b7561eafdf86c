//! Cloud Sync's configuration in the tenant: its job (`GET`/`PATCH /lab/cloudsync/job`: the
//! state and the accidental-delete threshold; `POST /lab/cloudsync/job/restart`
//! `{"criteria": {"resetScope": "Full" | "ForceDeletes"}}`: "Clear quarantine" / "Restart
//! sync", as Graph's `…/synchronization/jobs/{id}/restart` takes it), and Graph's provisioning
//! log (`GET /v1.0/auditLogs/provisioning`). The job is Entra's, so a Hybrid Identity
//! Administrator reaches it as a Global Administrator does.

use super::*;
use crate::cloudsync::ResetScope;

pub(super) async fn get_job(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    Json(s.lock().cloud_sync_job.to_json()).into_response()
}

/// `{"deleteThreshold": N}`: the `SyncNotificationSettings` secret's DeleteThresholdValue.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct JobPatch {
    delete_threshold: usize,
}

pub(super) async fn patch_job(State(s): State<Shared>, headers: HeaderMap, body: Result<Body<JobPatch>, Response>) -> Response {
    let p = match hybrid_admin_body(&s, &headers, body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut t = s.lock();
    if let Err(m) = t.cloud_sync_job.set_delete_threshold(p.delete_threshold) {
        drop(t);
        return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &m);
    }
    Json(t.cloud_sync_job.to_json()).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Restart {
    criteria: Option<Criteria>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Criteria {
    reset_scope: Option<String>,
}

pub(super) async fn restart_job(State(s): State<Shared>, headers: HeaderMap, body: Result<Body<Restart>, Response>) -> Response {
    let p = match hybrid_admin_body(&s, &headers, body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let scope = match p.criteria.and_then(|c| c.reset_scope).as_deref() {
        None | Some("Full") => ResetScope::Full,
        Some("ForceDeletes") => ResetScope::ForceDeletes,
        Some(other) => {
            let msg = format!("resetScope '{other}' is not one the lab takes (Full, ForceDeletes).");
            return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", &msg);
        }
    };
    s.lock().cloud_sync_job.restart(scope);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /auditLogs/provisioning`: Cloud Sync's provisioning log, newest first, for the
/// directory audit log's readers; `$top` as Graph takes it.
pub(super) async fn provisioning(State(s): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let t = match audit::reader(&s, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let top = q.get("$top").and_then(|n| n.parse::<usize>().ok()).unwrap_or(1000).clamp(1, 1000);
    let value: Vec<Value> = t.cloud_sync_job.entries().take(top).map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).collect();
    Json(json!({ "@odata.context": format!("{}/v1.0/$metadata#auditLogs/provisioning", s.https_base), "value": value })).into_response()
}
