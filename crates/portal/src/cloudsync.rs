//! Entra ID › Entra Connect › Cloud sync, what its troubleshooting page has an administrator
//! look at: the provisioning agents and whether each is active, the configuration's job
//! (healthy, or in quarantine and why) with "Restart sync", and the provisioning logs. Every
//! value is read from the tenant's API with the administrator's token.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::{GLOBAL_ADMINISTRATOR, HYBRID_IDENTITY_ADMINISTRATOR, signed_in};
use crate::{Shared, api_error, render};

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/portal/admin/cloudsync", get(page).post(restart))
}

/// One provisioning log line as the page lists it.
struct LogRow {
    time: String,
    action: String,
    status: String,
    source: String,
    target: String,
    error: String,
}

#[derive(Template)]
#[template(path = "admin_cloudsync.html")]
struct CloudSyncPage {
    admin: String,
    /// (name, id, Active)
    agents: Vec<(String, String, bool)>,
    job_id: String,
    quarantined: bool,
    quarantine_reason: String,
    quarantine_message: String,
    delete_threshold: u64,
    logs: Vec<LogRow>,
    done: Option<String>,
    error: Option<String>,
}

const ROLES: &[&str] = &[GLOBAL_ADMINISTRATOR, HYBRID_IDENTITY_ADMINISTRATOR];

async fn show(p: &crate::Portal, admin: String, token: &str, done: Option<String>, error: Option<String>) -> Response {
    let (_, engines) = p.api(Method::GET, "/lab/writeback/engines", Some(token), None).await;
    let agents = engines["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["agentKind"] == "CloudSync")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("displayName"), s("id"), e["connected"].as_bool() == Some(true))
        })
        .collect();
    let (_, job) = p.api(Method::GET, "/lab/cloudsync/job", Some(token), None).await;
    let (_, log) = p.api(Method::GET, "/v1.0/auditLogs/provisioning?$top=50", Some(token), None).await;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let logs = log["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| LogRow {
            time: s(&e["activityDateTime"]),
            action: s(&e["provisioningAction"]),
            status: s(&e["provisioningStatusInfo"]["status"]),
            source: s(&e["sourceIdentity"]["id"]),
            target: s(&e["targetIdentity"]["displayName"]),
            error: s(&e["provisioningStatusInfo"]["errorInformation"]["errorCode"]),
        })
        .collect();
    let q = &job["status"]["quarantine"];
    render(&CloudSyncPage {
        admin,
        agents,
        job_id: s(&job["id"]),
        quarantined: job["status"]["code"] == "Quarantine",
        quarantine_reason: s(&q["reason"]),
        quarantine_message: s(&q["error"]["message"]),
        delete_threshold: job["deleteThreshold"].as_u64().unwrap_or_default(),
        logs,
        done,
        error,
    })
}

async fn page(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/cloudsync", ROLES);
    show(&p, admin, &token, None, None).await
}

#[derive(Deserialize)]
struct RestartForm {
    /// `Full` ("Restart sync") or `ForceDeletes` (let the held deletes through).
    scope: String,
}

async fn restart(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<RestartForm>) -> Response {
    let (admin, token) = signed_in!(p, headers, "/portal/admin/cloudsync", ROLES);
    let body = json!({ "criteria": { "resetScope": f.scope } });
    let (status, answer) = p.api(Method::POST, "/lab/cloudsync/job/restart", Some(&token), Some(body)).await;
    if (200..300).contains(&status) {
        let done = if f.scope == "ForceDeletes" { "Restarted: the held deletes go through on the next run." } else { "Restarted." };
        show(&p, admin, &token, Some(done.into()), None).await
    } else {
        show(&p, admin, &token, None, Some(api_error(&answer).1)).await
    }
}
