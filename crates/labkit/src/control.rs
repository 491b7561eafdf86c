//! The lab's own switches on the AD DS side, served on the lab's HTTPS listener next to the
//! tenant: what an on-premises administrator would change with ADUC or PowerShell and no
//! LDAP client can (the lab keeps delegated rights outside nTSecurityDescriptor).
//! `POST /lab/adds/rights` `{"action": "grant" | "revoke" | "deny" | "remove-deny", "right":
//! "Reset Password" | "Change Password" | "Write lockoutTime" | "Write pwdLastSet" | "Unexpire
//! Password", "trustee": DN or "Everyone" (default: the connector account for grants, Everyone
//! for denies), "scope": DN (default: the domain root)}` — a deny wins over any allow (ADUC's
//! "User cannot change password" is Change Password denied to Everyone on the user).
//! `GET /lab/adds/rights[?trustee=DN or sAMAccountName]`: which of them the connector (or
//! the trustee: Cloud Sync's `provAgentgMSA$`) holds on the domain root.
//! `POST /lab/adds/fault` `{"state": "up" | "down" | "untrusted-certificate",
//! "policyHints": bool}` (either or both; `"dc": "DC2"` for another DC than the first): a DC
//! that does not answer, one whose certificate comes from a CA clients were not given, one
//! that predates the policy-hints control; `GET /lab/adds/fault[?dc=DC2]`: the switches as
//! they stand. `GET /lab/adds/dcs`: the lab's DCs and their replication; `POST
//! /lab/adds/replication` (see [`replicate`]). A rights switch acts on every DC. `GET /lab/adds/operations[?dc=FDC1]`: a DC's (default the first's)
//! recent operations (the client's address, who, the request, the answer; passwords `***`),
//! oldest first.
//! Lab-only, like the outbox: the lab listens on loopback.

use std::sync::Arc;

use ad_ds::access::Right;
use ad_ds::topology::Topology;
use ad_ds::{DcState, DomainController};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub fn router(dcs: Vec<Arc<DomainController>>, topologies: Vec<Arc<Topology>>, connector_dn: Option<String>) -> axum::Router {
    let dc = dcs[0].clone();
    let dc4 = dc.clone();
    let (all, all2, all3, all4, all5) = (dcs.clone(), dcs.clone(), dcs.clone(), dcs.clone(), dcs);
    let connector2 = connector_dn.clone();
    let rights = move |Json(body): Json<Value>| {
        let (dcs, connector_dn) = (all.clone(), connector_dn.clone());
        // a lab switch on the domain's ACL: every DC holds it at once, as after replication
        async move {
            let mut answer = None;
            for dc in &dcs {
                answer = Some(change_right(dc, connector_dn.as_deref(), &body));
                if answer.as_ref().is_some_and(|r| r.status() != StatusCode::OK) {
                    break;
                }
            }
            answer.expect("a lab has a DC")
        }
    };
    let fault = move |Json(body): Json<Value>| {
        let dcs = all2.clone();
        async move {
            match pick(&dcs, body["dc"].as_str()) {
                Ok(dc) => set_fault(dc, &body),
                Err(r) => *r,
            }
        }
    };
    let fault_state = move |axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| {
        let dcs = all3.clone();
        async move {
            match pick(&dcs, q.get("dc").map(String::as_str)) {
                Ok(dc) => Json(fault_json(dc)).into_response(),
                Err(r) => *r,
            }
        }
    };
    let (t1, t2) = (topologies.clone(), topologies);
    let dcs_view = move || {
        let (dcs, t) = (all4.clone(), t1.clone());
        async move { Json(dcs_json(&dcs, &t)).into_response() }
    };
    let replication = move |Json(body): Json<Value>| {
        let t = t2.clone();
        async move { replicate(&t, &body) }
    };
    let rights_held = move |axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| {
        let (dc, connector_dn) = (dc4.clone(), connector2.clone());
        async move {
            match q.get("trustee") {
                None => connector_rights(&dc, connector_dn.as_deref()),
                Some(t) => {
                    // a sAMAccountName (provAgentgMSA$) or a DN
                    let dn = dc.directory.read().unwrap_or_else(std::sync::PoisonError::into_inner).by_sam(t).map(|e| e.dn.to_string());
                    connector_rights(&dc, Some(dn.as_deref().unwrap_or(t)))
                }
            }
        }
    };
    let operations = move |axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| {
        let dcs = all5.clone();
        async move {
            // `?dc=FDC1`: another DC's record (default: the first's)
            let dc = match pick(&dcs, q.get("dc").map(String::as_str)) {
                Ok(dc) => dc.clone(),
                Err(r) => return *r,
            };
            let ops: Vec<Value> = dc
                .ops
                .recent()
                .into_iter()
                .map(|o| json!({ "seq": o.seq, "client": o.client.to_string(), "who": o.who, "request": o.request, "result": o.result }))
                .collect();
            Json(json!({ "value": ops })).into_response()
        }
    };
    axum::Router::new()
        .route("/lab/adds/operations", axum::routing::get(operations))
        .route("/lab/adds/rights", axum::routing::post(rights).get(rights_held))
        .route("/lab/adds/fault", axum::routing::post(fault).get(fault_state))
        .route("/lab/adds/dcs", axum::routing::get(dcs_view))
        .route("/lab/adds/replication", axum::routing::post(replication))
}

/// The DC a switch names (`"dc": "DC2"`; none: the first, the PDC emulator).
fn pick<'a>(dcs: &'a [Arc<DomainController>], name: Option<&str>) -> Result<&'a Arc<DomainController>, Box<Response>> {
    let Some(name) = name else { return Ok(&dcs[0]) };
    let named = |d: &&Arc<DomainController>| {
        d.directory.read().unwrap_or_else(std::sync::PoisonError::into_inner).config().dc_name.eq_ignore_ascii_case(name)
    };
    dcs.iter().find(named).ok_or_else(|| Box::new(bad(format!("no domain controller {name:?} in this lab"))))
}

/// `GET /lab/adds/dcs`: each DC of every domain (name, domain, PDC emulator or not, its
/// switches, its highest USN) and the replication between a domain's DCs.
fn dcs_json(dcs: &[Arc<DomainController>], topologies: &[Arc<Topology>]) -> Value {
    let list: Vec<Value> = dcs
        .iter()
        .map(|dc| {
            let d = dc.directory.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut v = fault_json(dc);
            v["name"] = json!(d.config().dc_name);
            v["domain"] = json!(d.config().dns_name);
            v["pdc"] = json!(dc.pdc.get().is_none());
            v["highestCommittedUSN"] = json!(d.highest_usn());
            v
        })
        .collect();
    // each DC's backlog from its domain's other DCs (repadmin /showrepl)
    let backlog: Vec<(String, usize)> = topologies.iter().flat_map(|t| t.backlog()).collect();
    let list: Vec<Value> = list
        .into_iter()
        .map(|mut v| {
            let waiting = backlog.iter().find(|(n, _)| v["name"].as_str() == Some(n.as_str())).map_or(0, |(_, w)| *w);
            v["pendingChanges"] = json!(waiting);
            v
        })
        .collect();
    let replication = topologies.first().map(|t| {
        let s = t.status();
        json!({ "intervalSeconds": s.interval_seconds, "paused": s.paused })
    });
    json!({ "value": list, "replication": replication })
}

/// `POST /lab/adds/replication` `{"action": "now" | "run-due"}` (`repadmin /syncall`; what
/// fell due on the lab clock), `{"paused": bool}`, `{"intervalSeconds": N}` (any of them):
/// the replication between each domain's DCs. `400` in a lab whose domains have one DC each.
fn replicate(topologies: &[Arc<Topology>], body: &Value) -> Response {
    if topologies.is_empty() {
        return bad("this lab's domains have one domain controller each: nothing replicates (start it with --dcs 2)".into());
    }
    let known = ["action", "paused", "intervalSeconds"];
    if body.as_object().is_none_or(|o| o.is_empty() || o.keys().any(|k| !known.contains(&k.as_str()))) {
        return bad("expected {\"action\": \"now\" | \"run-due\"}, {\"paused\": bool} and/or {\"intervalSeconds\": N}".into());
    }
    let paused = match body.get("paused") {
        None => None,
        Some(p) => match p.as_bool() {
            Some(p) => Some(p),
            None => return bad("`paused` must be true or false".into()),
        },
    };
    let interval = match body.get("intervalSeconds") {
        None => None,
        Some(i) => match i.as_u64().filter(|i| (1..=86_400).contains(i)) {
            Some(i) => Some(std::time::Duration::from_secs(i)),
            None => return bad("`intervalSeconds` must be 1..86400".into()),
        },
    };
    let action = match body.get("action").map(|a| a.as_str()) {
        None => None,
        Some(Some(a @ ("now" | "run-due"))) => Some(a),
        Some(_) => return bad("`action` must be now or run-due".into()),
    };
    let mut passes = vec![];
    for t in topologies {
        if let Some(p) = paused {
            t.set_paused(p);
        }
        if let Some(i) = interval {
            t.set_interval(i);
        }
        passes.extend(match action {
            Some("now") => t.replicate_now(),
            Some(_) => t.run_due(),
            None => vec![],
        });
    }
    let s = topologies[0].status();
    let passes: Vec<Value> = passes.iter().map(|p| json!({ "from": p.from, "to": p.to, "objects": p.objects })).collect();
    Json(json!({ "intervalSeconds": s.interval_seconds, "paused": s.paused, "passes": passes })).into_response()
}

fn fault_json(dc: &DomainController) -> Value {
    let state = match dc.faults.state() {
        DcState::Up => "up",
        DcState::Down => "down",
        DcState::UntrustedCertificate => "untrusted-certificate",
    };
    json!({
        "state": state,
        "policyHints": dc.faults.policy_hints_supported(),
        "searchDelayMs": dc.faults.search_delay().as_millis() as u64
    })
}

fn connector_rights(dc: &DomainController, connector_dn: Option<&str>) -> Response {
    let d = dc.directory.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = d.base_dn().to_string();
    let rights: Vec<Value> = Right::ALL
        .iter()
        .map(|r| json!({ "right": r.name(), "granted": d.is_granted(connector_dn, *r, &root).unwrap_or(false) }))
        .collect();
    Json(json!({ "trustee": connector_dn, "scope": root, "rights": rights })).into_response()
}

fn set_fault(dc: &DomainController, body: &Value) -> Response {
    let state = match body.get("state").map(|s| s.as_str()) {
        None => None,
        Some(Some("up")) => Some(DcState::Up),
        Some(Some("down")) => Some(DcState::Down),
        Some(Some("untrusted-certificate")) => Some(DcState::UntrustedCertificate),
        Some(_) => return bad("`state` must be up, down or untrusted-certificate".into()),
    };
    let hints = match body.get("policyHints") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return bad("`policyHints` must be true or false".into()),
    };
    let max = ad_ds::server::MAX_SEARCH_DELAY.as_millis() as u64;
    let search_delay = match body.get("searchDelayMs") {
        None => None,
        Some(v) => match v.as_u64().filter(|ms| *ms <= max) {
            Some(ms) => Some(std::time::Duration::from_millis(ms)),
            None => return bad(format!("`searchDelayMs` must be a whole number of milliseconds, 0..{max}")),
        },
    };
    if state.is_none() && hints.is_none() && search_delay.is_none() {
        return bad("expected `state`, `policyHints` and/or `searchDelayMs`".into());
    }
    if let Some(s) = state {
        dc.faults.set_state(s);
    }
    if let Some(h) = hints {
        dc.faults.set_policy_hints_supported(h);
    }
    if let Some(d) = search_delay {
        dc.faults.set_search_delay(d);
    }
    Json(fault_json(dc)).into_response()
}

/// `POST /lab/reset`: the lab back to its start, keeping its CA, ports and URLs — done by
/// the program that runs it (`lab up`, `lab classroom`), which `Lab::reset_requested` wakes.
/// `202` with `{"status": "resetting"}`; `501` for a lab whose program cannot restart it
/// (one a test started through labkit or hybrid-lab).
pub fn reset_router(requests: Option<Arc<tokio::sync::Notify>>) -> axum::Router {
    let reset = move || {
        let requests = requests.clone();
        async move {
            match requests {
                Some(n) => {
                    n.notify_one();
                    (StatusCode::ACCEPTED, Json(json!({ "status": "resetting" }))).into_response()
                }
                None => (
                    StatusCode::NOT_IMPLEMENTED,
                    Json(json!({ "error": { "code": "NotSupported", "message": "This lab cannot reset itself: the program that started it does not restart labs (`lab up` does)." } })),
                )
                    .into_response(),
            }
        }
    };
    axum::Router::new().route("/lab/reset", axum::routing::post(reset))
}

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": { "code": "BadRequest", "message": message } }))).into_response()
}

fn change_right(dc: &DomainController, connector_dn: Option<&str>, body: &Value) -> Response {
    let Some(right) = body["right"].as_str().and_then(Right::parse) else {
        let names: Vec<&str> = Right::ALL.iter().map(|r| r.name()).collect();
        return bad(format!("`right` must be one of {}", names.join(", ")));
    };
    let mut d = dc.directory.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = d.base_dn().to_string();
    let action = body["action"].as_str().unwrap_or_default();
    // a deny's trustee defaults to Everyone (ADUC's "User cannot change password"), a grant's
    // to the connector account
    let trustee = match (body["trustee"].as_str(), action) {
        (Some(t), _) if t.eq_ignore_ascii_case("Everyone") => None,
        (Some(t), _) => Some(t),
        (None, "deny" | "remove-deny") => None,
        (None, _) => connector_dn,
    };
    let scope = body["scope"].as_str().unwrap_or(&root).to_string();
    let outcome = match action {
        "grant" => d.grant(trustee, right, &scope).map(|()| true),
        "revoke" => d.revoke(trustee, right, &scope),
        "deny" => d.deny(trustee, right, &scope).map(|()| true),
        "remove-deny" => d.remove_deny(trustee, right, &scope),
        _ => return bad("`action` must be grant, revoke, deny or remove-deny".into()),
    };
    let trustee = trustee.unwrap_or("Everyone");
    match outcome {
        Ok(changed) => Json(json!({ "right": right.name(), "trustee": trustee, "scope": scope, "changed": changed })).into_response(),
        Err(e) => bad(e.to_string()),
    }
}
