//! The engine's status and switches over HTTP (`/lab/engine`).

use super::*;

/// The engine's status and fault switches over HTTP (the lab serves them on its HTTPS
/// listener under `/lab/engine`): `GET /lab/engine` (status), `GET /lab/engine/events`,
/// `POST /lab/engine/control` `{"action": "stop" | "start" | "run-due" | "delay", "ms": N}`,
/// or `{"action": "offboard", "userPrincipalName", "password"}` (a Global Administrator's).
/// The lab's front door lets only the lab's administrator reach them (tenant's `guard`);
/// events carry no passwords.
/// `slot` holds the engine once it has onboarded (404 until then, or in a lab without one).
pub fn control_router(slot: Arc<std::sync::OnceLock<Engine>>) -> axum::Router {
    control_router_at(slot, "/lab/engine")
}

/// Connect's connectors (`{prefix}/directories`): `GET` lists them (Synchronization Service
/// Manager's Connectors tab); `POST` `{"name": "fabrikam.example"}` is the wizard's Add
/// Directory for a directory the server reaches; `DELETE /{name}` its Remove; `PUT
/// /{name}/password` `{"password"}` the connector's "Connect to Active Directory Forest"
/// password, after it was changed in AD.
fn directories_router(slot: Arc<std::sync::OnceLock<Engine>>) -> axum::Router {
    use axum::Json;
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    fn answer(e: &Engine, r: Result<(), Error>) -> Response {
        match r {
            Ok(()) => Json(json!({ "value": e.directories(), "available": e.unconnected_directories() })).into_response(),
            Err(err) => (StatusCode::BAD_REQUEST, Json(json!({ "error": { "code": "BadRequest", "message": err.0 } }))).into_response(),
        }
    }
    fn none() -> Response {
        let msg = json!({ "error": { "code": "NotFound", "message": "This lab runs no writeback engine." } });
        (StatusCode::NOT_FOUND, Json(msg)).into_response()
    }
    let (s1, s2, s3, s4) = (slot.clone(), slot.clone(), slot.clone(), slot);
    let list = move || {
        let e = s1.get().cloned();
        async move {
            e.map_or_else(none, |e| Json(json!({ "value": e.directories(), "available": e.unconnected_directories() })).into_response())
        }
    };
    let add = move |Json(body): Json<Value>| {
        let e = s2.get().cloned();
        async move {
            let Some(e) = e else { return none() };
            let Some(name) = body["name"].as_str() else {
                return answer(&e, Err(Error("Expected {\"name\": the directory's DNS name}.".into())));
            };
            let r = e.add_directory(name);
            answer(&e, r)
        }
    };
    let remove = move |Path(name): Path<String>| {
        let e = s3.get().cloned();
        async move {
            let Some(e) = e else { return none() };
            let r = e.remove_directory(&name);
            answer(&e, r)
        }
    };
    let password = move |Path(name): Path<String>, Json(body): Json<Value>| {
        let e = s4.get().cloned();
        async move {
            let Some(e) = e else { return none() };
            let r = match body["password"].as_str() {
                Some(p) => e.set_connector_password(&name, p).await,
                None => Err(Error("Expected {\"password\"}.".into())),
            };
            answer(&e, r)
        }
    };
    axum::Router::new()
        .route("/", axum::routing::get(list).post(add))
        .route("/{name}", axum::routing::delete(remove))
        .route("/{name}/password", axum::routing::put(password))
}

/// The same switches for an agent under `prefix` (`/lab/engine` for the lab's engine,
/// `/lab/cloudsync` for Cloud Sync's provisioning agent), and for Cloud Sync's agent its
/// trace log (`GET {prefix}/agent-trace`) and `Set-AADCloudSyncPermissions` (`POST
/// {prefix}/permissions` `{"permissionType", "userName", "password"}`: an Enterprise or Domain
/// Administrator's credentials); `PUT {prefix}/scope` `{"scope": [DN, …]}` edits the
/// configuration's scope (OUs and groups; Cloud Sync's at most 59). `GET
/// {prefix}/domain-controllers` names the domain's DCs, the connector's settings and the DC it
/// talks to; `PUT` it `{"preferred": ["DC2"], "onlyPreferred": true}` sets Connect's preferred
/// DCs and restarts the connector's connection ([`crate::dcs`]).
pub fn control_router_at(slot: Arc<std::sync::OnceLock<Engine>>, prefix: &str) -> axum::Router {
    use axum::Json;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    fn none() -> Response {
        let msg = json!({ "error": { "code": "NotFound", "message": "This lab runs no writeback engine." } });
        (StatusCode::NOT_FOUND, Json(msg)).into_response()
    }
    let (s1, s2, s3, s4, s5, s6, s7) = (slot.clone(), slot.clone(), slot.clone(), slot.clone(), slot.clone(), slot.clone(), slot.clone());
    let (s8, s9, s10) = (slot.clone(), slot.clone(), slot);
    fn dc_view(e: &Engine) -> Value {
        let s = e.dc_settings();
        json!({
            "domainControllers": e.domain_controllers().iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            "preferred": s.preferred,
            "onlyPreferred": s.only_preferred,
            "current": e.current_dc(),
        })
    }
    let dcs_get = move || {
        let e = s8.get().cloned();
        async move {
            match e {
                Some(e) => Json(dc_view(&e)).into_response(),
                None => none(),
            }
        }
    };
    let dcs_put = move |Json(body): Json<Value>| {
        let e = s9.get().cloned();
        async move {
            let Some(e) = e else { return none() };
            let Ok(settings) = serde_json::from_value::<crate::dcs::DcSettings>(body) else {
                let msg = json!({ "error": { "code": "BadRequest", "message": "Expected {\"preferred\": [DC name, …], \"onlyPreferred\": bool}." } });
                return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
            };
            match e.set_dc_settings(settings).await {
                Ok(()) => Json(dc_view(&e)).into_response(),
                Err(err) => {
                    let msg = json!({ "error": { "code": "BadRequest", "message": err.0 } });
                    (StatusCode::BAD_REQUEST, Json(msg)).into_response()
                }
            }
        }
    };
    let status = move || {
        let e = s1.get().cloned();
        async move {
            match e {
                Some(e) => Json(json!({
                    "engineId": e.id(),
                    "agentKind": e.kind(),
                    "running": e.running(),
                    "connected": e.connected(),
                    // requests taken and not yet answered (a scenario's "no such event" waits for 0)
                    "inFlight": e.in_flight(),
                    "syncScope": e.scope().await,
                    "faults": { "unsealedLdap": e.faults().0, "keyMismatch": e.faults().1 },
                }))
                .into_response(),
                None => none(),
            }
        }
    };
    let events = move || {
        let e = s2.get().cloned();
        async move {
            match e {
                Some(e) => Json(json!({ "value": e.events() })).into_response(),
                None => none(),
            }
        }
    };
    let trace = move |axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| {
        let e = s4.get().cloned();
        async move {
            let since = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
            match e {
                Some(e) => Json(json!({ "value": e.trace_since(since) })).into_response(),
                None => none(),
            }
        }
    };
    let control = move |Json(body): Json<Value>| {
        let e = s3.get().cloned();
        async move {
            let Some(e) = e else { return none() };
            match (body["action"].as_str(), body["ms"].as_u64()) {
                (Some("onboard"), _) => {
                    let (upn, pw) = (body["userPrincipalName"].as_str().unwrap_or(""), body["password"].as_str().unwrap_or(""));
                    if let Err(err) = e.enable_writeback(upn, pw).await {
                        let msg = json!({ "error": { "code": "OnboardingFailed", "message": err.0 } });
                        return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
                    }
                }
                (Some("disable-writeback"), _) => {
                    let (upn, pw) = (body["userPrincipalName"].as_str().unwrap_or(""), body["password"].as_str().unwrap_or(""));
                    if let Err(err) = e.disable_writeback(upn, pw).await {
                        let msg = json!({ "error": { "code": "OffboardingFailed", "message": err.0 } });
                        return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
                    }
                }
                (Some("offboard"), _) => {
                    let (upn, pw) = (body["userPrincipalName"].as_str().unwrap_or(""), body["password"].as_str().unwrap_or(""));
                    if let Err(err) = e.offboard(upn, pw).await {
                        let msg = json!({ "error": { "code": "OffboardingFailed", "message": err.0 } });
                        return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
                    }
                }
                (Some("stop"), _) => {
                    e.stop();
                    // answered once the relay link is gone (in-flight writes answered first)
                    e.wait_disconnected(Duration::from_secs(5)).await;
                }
                (Some("start"), _) => {
                    e.resume();
                    if !e.wait_connected(Duration::from_secs(10)).await {
                        let msg = json!({ "error": { "code": "ServiceUnavailable", "message": "The engine did not reconnect to the relay within 10 s." } });
                        return (StatusCode::SERVICE_UNAVAILABLE, Json(msg)).into_response();
                    }
                }
                (Some("delay"), Some(ms @ 0..=MAX_DELAY_MS)) => e.set_delay(Duration::from_millis(ms)),
                (Some("export-delay"), Some(ms @ 0..=MAX_DELAY_MS)) => e.set_export_delay(Duration::from_millis(ms)),
                (Some("fault"), _) if body["unsealedLdap"].is_boolean() || body["keyMismatch"].is_boolean() => {
                    if let Err(err) = e.set_faults(body["unsealedLdap"].as_bool(), body["keyMismatch"].as_bool()).await {
                        let msg = json!({ "error": { "code": "BadRequest", "message": err.0 } });
                        return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
                    }
                }
                (Some("run-due"), _) => {
                    // Connect's scheduler after the lab clock moved: what fell due runs now
                    let report = e.run_due().await;
                    return Json(json!({ "running": e.running(), "connected": e.connected(), "sync": report })).into_response();
                }
                _ => {
                    let msg = json!({ "error": { "code": "BadRequest", "message": format!("Expected {{\"action\": \"stop\" | \"start\" | \"run-due\" | \"onboard\" | \"disable-writeback\" | \"offboard\" | \"delay\" | \"export-delay\", \"ms\": 0..{MAX_DELAY_MS}}} or {{\"action\": \"fault\", \"unsealedLdap\": bool, \"keyMismatch\": bool}}.") } });
                    return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
                }
            }
            Json(json!({ "running": e.running(), "connected": e.connected() })).into_response()
        }
    };
    let agent_trace = move || {
        let e = s5.get().cloned();
        async move {
            match e {
                Some(e) => Json(json!({ "value": e.agent_trace() })).into_response(),
                None => none(),
            }
        }
    };
    let permissions = move |Json(body): Json<Value>| {
        let e = s6.get().cloned();
        async move {
            let Some(e) = e else { return none() };
            if e.kind() != relay::AgentKind::CloudSync {
                let msg = json!({ "error": { "code": "BadRequest", "message": "Set-AADCloudSyncPermissions is Cloud Sync's: this is Connect Sync's engine (Set-ADSyncPasswordWritebackPermissions)." } });
                return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
            }
            let (t, user, pw) = (body["permissionType"].as_str(), body["userName"].as_str(), body["password"].as_str());
            let (Some(t), Some(user), Some(pw)) = (t, user, pw) else {
                let msg = json!({ "error": { "code": "BadRequest", "message": "Expected {\"permissionType\", \"userName\", \"password\"} (an Enterprise or Domain Administrator's credentials)." } });
                return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
            };
            match crate::cloudsync::set_permissions(&e.inner.cfg, t, user, pw).await {
                Ok(done) => Json(done).into_response(),
                Err(m) => {
                    let msg = json!({ "error": { "code": "BadRequest", "message": format!("Set-AADCloudSyncPermissions: {m}") } });
                    (StatusCode::BAD_REQUEST, Json(msg)).into_response()
                }
            }
        }
    };
    let scope = move |Json(body): Json<Value>| {
        let e = s7.get().cloned();
        async move {
            let Some(e) = e else { return none() };
            let Some(list) =
                body["scope"].as_array().and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
            else {
                let msg =
                    json!({ "error": { "code": "BadRequest", "message": "Expected {\"scope\": [DN, …]} (OUs and security groups)." } });
                return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
            };
            match e.set_scope(list).await {
                Ok(()) => Json(json!({ "syncScope": e.scope().await })).into_response(),
                Err(err) => {
                    let msg = json!({ "error": { "code": "BadRequest", "message": err.0 } });
                    (StatusCode::BAD_REQUEST, Json(msg)).into_response()
                }
            }
        }
    };
    axum::Router::new()
        .nest(&format!("{prefix}/directories"), directories_router(s10))
        .route(&format!("{prefix}/scope"), axum::routing::put(scope))
        .route(prefix, get(status))
        .route(&format!("{prefix}/events"), get(events))
        .route(&format!("{prefix}/trace"), get(trace))
        .route(&format!("{prefix}/agent-trace"), get(agent_trace))
        .route(&format!("{prefix}/permissions"), post(permissions))
        .route(&format!("{prefix}/control"), post(control))
        .route(&format!("{prefix}/domain-controllers"), get(dcs_get).put(dcs_put))
}
