//! Synchronization Service Manager, the part of it the multi-forest troubleshooting walks:
//! the Connectors tab (each AD connector with its account, DC, password writeback, and its
//! last run's status — `no-start-credentials` after its account's password changed in AD),
//! a connector's Properties › "Connect to Active Directory Forest" (its password, the
//! service restarted), and Run (a delta cycle, `Start-ADSyncSyncCycle -PolicyType Delta`).
//! Through `/lab/engine/directories` and `/lab/sync` as the signed-in administrator; the
//! password typed here goes to the engine and nowhere else.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::signed_in;
use crate::{Shared, render, render_status};

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/portal/syncmanager", get(page).post(act))
}

/// One connector as the Connectors tab lists it.
struct Row {
    name: String,
    account: String,
    dc: String,
    writeback: bool,
    last_run: String,
}

#[derive(Template)]
#[template(path = "sync_manager.html")]
struct SyncManagerPage {
    rows: Vec<Row>,
    error: Option<String>,
    outcome: Option<String>,
}

async fn view(p: &crate::Portal, token: &str, error: Option<String>, outcome: Option<String>) -> SyncManagerPage {
    let (v, failed) = p.read_api("/lab/engine/directories", token).await;
    let error = error.or(failed);
    let rows = v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| Row {
            name: d["name"].as_str().unwrap_or_default().into(),
            account: d["connectorAccount"].as_str().unwrap_or_default().into(),
            dc: d["currentDc"].as_str().unwrap_or("(not connected yet)").into(),
            writeback: d["passwordWriteback"].as_bool().unwrap_or(false),
            last_run: d["lastRun"].as_str().unwrap_or("(not run yet)").into(),
        })
        .collect();
    SyncManagerPage { rows, error, outcome }
}

async fn page(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (_, token) = signed_in!(p, headers, "/portal/syncmanager", crate::connect::CONNECT_ROLES);
    render(&view(&p, &token, None, None).await)
}

#[derive(Deserialize)]
struct ActForm {
    action: String,
    directory: Option<String>,
    password: Option<String>,
}

async fn act(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<ActForm>) -> Response {
    let (_, token) = signed_in!(p, headers, "/portal/syncmanager", crate::connect::CONNECT_ROLES);
    let (status, answer, done) = match (f.action.as_str(), f.directory.as_deref(), f.password.as_deref()) {
        ("password", Some(d), Some(pw)) if !pw.is_empty() && crate::dns_name(d) => {
            let path = format!("/lab/engine/directories/{d}/password");
            let (s, v) = p.api(Method::PUT, &path, Some(&token), Some(json!({ "password": pw }))).await;
            (s, v, format!("The password of {d}'s connector account is saved; the service restarted."))
        }
        ("run", _, _) => {
            let (s, v) = p.api(Method::POST, "/lab/sync", Some(&token), Some(json!({ "policyType": "Delta" }))).await;
            let summary = summary(&v);
            (s, v, summary)
        }
        _ => {
            let page = view(&p, &token, Some("Choose a connector and type its account's password, or Run.".into()), None).await;
            return render_status(StatusCode::BAD_REQUEST, &page);
        }
    };
    if !(200..300).contains(&status) {
        let page = view(&p, &token, Some(crate::api_error(&answer).1), None).await;
        return render_status(StatusCode::BAD_REQUEST, &page);
    }
    render(&view(&p, &token, None, Some(done)).await)
}

/// A cycle's report in a line, with the connectors that did not run.
fn summary(v: &Value) -> String {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let mut s = format!(
        "Delta synchronization completed: {} added, {} updated, {} deleted, {} passwords.",
        n("added"),
        n("updated"),
        n("deleted"),
        n("passwords")
    );
    for e in v["errors"].as_array().into_iter().flatten() {
        s.push_str(&format!(" {}: {}.", e["code"].as_str().unwrap_or_default(), e["distinguishedName"].as_str().unwrap_or_default()));
    }
    s
}

#[cfg(test)]
mod tests {
    /// A directory's name from a form goes into an API path: nothing but a DNS name passes.
    #[test]
    fn only_a_dns_name_reaches_the_directories_api() {
        assert!(crate::dns_name("fabrikam.example") && crate::dns_name("child.testlab.example"));
        for bad in ["", "../engine/control", "fabrikam.example/password", "a?b=c", "x..y", "fab rikam", &"a".repeat(254)] {
            assert!(!crate::dns_name(bad), "{bad:?}");
        }
    }
}
