//! The domain's DCs and their replication, as an administrator sees them with Active
//! Directory Sites and Services and `repadmin`: each DC (its domain, whether it holds the PDC
//! emulator role, whether it answers, its highest committed USN, the changes its partners hold
//! that it has not taken yet — `repadmin /showrepl`), and the replication's switches:
//! Replicate now (`repadmin /syncall`), inbound replication disabled or enabled (`repadmin
//! /options +DISABLE_INBOUND_REPL`). Through `/lab/adds/dcs` and `/lab/adds/replication` as
//! the signed-in administrator.

use askama::Template;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::admin::signed_in;
use crate::{Shared, render, render_status};

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/portal/dcs", get(page).post(act))
}

struct Row {
    name: String,
    domain: String,
    pdc: bool,
    state: String,
    usn: u64,
    pending: u64,
}

#[derive(Template)]
#[template(path = "dcs.html")]
struct DcsPage {
    rows: Vec<Row>,
    /// Replication between the DCs (None: one DC per domain).
    paused: Option<bool>,
    interval: u64,
    error: Option<String>,
    outcome: Option<String>,
}

async fn view(p: &crate::Portal, token: &str, error: Option<String>, outcome: Option<String>) -> DcsPage {
    let (v, failed) = p.read_api("/lab/adds/dcs", token).await;
    let error = error.or(failed);
    let rows = v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| Row {
            name: d["name"].as_str().unwrap_or_default().into(),
            domain: d["domain"].as_str().unwrap_or_default().into(),
            pdc: d["pdc"] == true,
            state: d["state"].as_str().unwrap_or("up").into(),
            usn: d["highestCommittedUSN"].as_u64().unwrap_or(0),
            pending: d["pendingChanges"].as_u64().unwrap_or(0),
        })
        .collect();
    let r = &v["replication"];
    DcsPage { rows, paused: r["paused"].as_bool(), interval: r["intervalSeconds"].as_u64().unwrap_or(0), error, outcome }
}

async fn page(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let (_, token) = signed_in!(p, headers, "/portal/dcs");
    render(&view(&p, &token, None, None).await)
}

#[derive(Deserialize)]
struct ActForm {
    action: String,
}

async fn act(State(p): State<Shared>, headers: HeaderMap, Form(f): Form<ActForm>) -> Response {
    let (_, token) = signed_in!(p, headers, "/portal/dcs");
    let (body, done) = match f.action.as_str() {
        "now" => (json!({ "action": "now" }), "Replication ran: every DC pulled its partners' changes (repadmin /syncall)."),
        "pause" => (json!({ "paused": true }), "Inbound replication is disabled on every DC (repadmin /options +DISABLE_INBOUND_REPL)."),
        "resume" => (json!({ "paused": false }), "Inbound replication is enabled again (repadmin /options -DISABLE_INBOUND_REPL)."),
        _ => return render_status(StatusCode::BAD_REQUEST, &view(&p, &token, Some("Unknown action.".into()), None).await),
    };
    let (status, answer) = p.api(Method::POST, "/lab/adds/replication", Some(&token), Some(body)).await;
    if !(200..300).contains(&status) {
        return render_status(StatusCode::BAD_REQUEST, &view(&p, &token, Some(crate::api_error(&answer).1), None).await);
    }
    render(&view(&p, &token, None, Some(done.into())).await).into_response()
}
