//! The tenant's side of writeback: engines register (onboarding), connect out to the relay
//! WebSocket, beat, and answer requests. [`RelayHub`] is the writeback port the tenant's
//! password operations go through: it seals each password for the engine's key, sends the
//! request to a connected engine, and waits for the answer — at most [`RelayHub::timeout`],
//! after which the caller gets Entra's "can't reach on-premises" answer and the request
//! carries a deadline the engine honours (it refuses expired requests).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use relay::{Outcome, Sealed, ToEngine, ToTenant};
use sha2::Digest;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::sspr::{OnPremOp, OnPremRequest, WritebackError, WritebackFuture};

/// A registered engine.
struct Engine {
    display_name: String,
    /// Connect Sync's engine or Cloud Sync's provisioning agent.
    kind: relay::AgentKind,
    public_key: rsa::RsaPublicKey,
    /// SHA-256 of the relay credential (the credential itself is shown once).
    credential: [u8; 32],
    registered: String,
    /// The open relay, if the engine is connected.
    link: Option<mpsc::UnboundedSender<ToEngine>>,
    /// Which connection the link is (a reconnect replaces it).
    link_id: u64,
    last_heartbeat: Option<String>,
    /// The link's data key and how many passwords it has sealed (a new link, a new key).
    data_key: Option<(relay::DataKey, u64)>,
}

#[derive(Default)]
struct Registry {
    engines: HashMap<Uuid, Engine>,
    /// Requests waiting for an answer, with the link they went out on.
    pending: HashMap<Uuid, (u64, oneshot::Sender<Outcome>)>,
    /// Sync cycles asked for, waiting for their report.
    pending_sync: HashMap<Uuid, (u64, oneshot::Sender<relay::SyncReport>)>,
    next_link: u64,
}

pub struct RelayHub {
    state: Mutex<Registry>,
    clock: clock::Clock,
    /// How long a caller waits for on-premises.
    pub timeout: Mutex<Duration>,
}

impl RelayHub {
    pub fn new(clock: clock::Clock) -> RelayHub {
        RelayHub { state: Mutex::default(), clock, timeout: Mutex::new(Duration::from_secs(10)) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> String {
        self.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default()
    }

    /// Registers an engine; its relay credential (returned once).
    pub fn register(&self, display_name: &str, public_key: rsa::RsaPublicKey, kind: relay::AgentKind) -> (Uuid, String) {
        let (id, credential) = {
            // an engine's id and relay credential, its data keys and nonces: from the OS, so
            // no two labs ever share them whatever their seeds
            let id = Uuid::new_v4();
            let mut secret = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            (id, base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret))
        };
        let engine = Engine {
            display_name: display_name.into(),
            kind,
            public_key,
            credential: sha2::Sha256::digest(credential.as_bytes()).into(),
            registered: self.now(),
            link: None,
            link_id: 0,
            last_heartbeat: None,
            data_key: None,
        };
        self.state().engines.insert(id, engine);
        (id, credential)
    }

    /// Offboards an engine: its link closes and it can no longer connect.
    pub fn remove(&self, id: &Uuid) -> bool {
        self.state().engines.remove(id).is_some()
    }

    /// Drops every engine's link (the lab's "relay down" fault); engines reconnect.
    pub fn disconnect_all(&self) {
        for e in self.state().engines.values_mut() {
            e.link = None;
        }
    }

    /// Whether an agent of this kind is registered (connected or not): the SSPR blade shows
    /// Cloud Sync's checkbox only then.
    pub fn registered(&self, kind: relay::AgentKind) -> bool {
        self.state().engines.values().any(|e| e.kind == kind)
    }

    /// The kind of a registered engine.
    fn kind_of(&self, id: &Uuid) -> Option<relay::AgentKind> {
        self.state().engines.get(id).map(|e| e.kind)
    }

    fn authenticate(&self, header: &str) -> Option<Uuid> {
        let (id, secret) = header.strip_prefix("Bearer ")?.split_once('.')?;
        let id = Uuid::parse_str(id).ok()?;
        let st = self.state();
        let e = st.engines.get(&id)?;
        credential_matches(&e.credential, secret).then_some(id)
    }

    pub fn status(&self) -> Vec<Value> {
        let st = self.state();
        let mut v: Vec<Value> = st
            .engines
            .iter()
            .map(|(id, e)| {
                json!({
                    "id": id.to_string(), "displayName": e.display_name, "agentKind": e.kind, "registeredDateTime": e.registered,
                    "connected": e.link.is_some(), "lastHeartbeatDateTime": e.last_heartbeat,
                })
            })
            .collect();
        v.sort_by_key(|e| e["id"].as_str().unwrap_or("").to_string());
        v
    }

    pub fn any_connected(&self) -> bool {
        self.state().engines.values().any(|e| e.link.is_some())
    }

    /// Whether an agent of this kind is connected.
    pub fn connected(&self, kind: relay::AgentKind) -> bool {
        self.state().engines.values().any(|e| e.kind == kind && e.link.is_some())
    }

    /// The data key for an engine's current link, made (one RSA operation) when the link
    /// has none or has used it [`relay::DATA_KEY_USES`] times; `uses` passwords are counted.
    fn data_key(&self, engine: &Uuid, public: &rsa::RsaPublicKey, uses: u64) -> relay::DataKey {
        let mut st = self.state();
        let Some(e) = st.engines.get_mut(engine) else {
            return relay::DataKey::new(public, &mut rand::rngs::OsRng);
        };
        match &mut e.data_key {
            Some((k, n)) if *n + uses <= relay::DATA_KEY_USES => {
                *n += uses;
                k.clone()
            }
            slot => {
                let k = relay::DataKey::new(public, &mut rand::rngs::OsRng);
                *slot = Some((k.clone(), uses));
                k
            }
        }
    }

    fn seal(&self, key: &relay::DataKey, secret: &str) -> Sealed {
        key.seal(secret, &mut rand::rngs::OsRng)
    }
}

impl crate::sspr::Writeback for std::sync::Arc<RelayHub> {
    fn available(&self, agent: relay::AgentKind) -> bool {
        self.connected(agent)
    }

    fn send(&self, request: OnPremRequest) -> WritebackFuture {
        let hub = self.clone();
        Box::pin(async move {
            let id = Uuid::new_v4();
            let (tx, rx) = oneshot::channel();
            {
                let mut st = hub.state();
                // the most recently beating connected agent of the kind that provisions the user
                // (several may be registered; "any one healthy agent answers")
                let chosen = st
                    .engines
                    .iter()
                    .filter(|(_, e)| e.link.is_some() && e.kind == request.agent)
                    .max_by_key(|(_, e)| e.last_heartbeat.clone())
                    .map(|(id, e)| (*id, e.public_key.clone(), e.link.clone().expect("connected"), e.link_id));
                let Some((engine, public, link, link_id)) = chosen else { return Err(WritebackError::Unreachable) };
                drop(st);
                let key = hub.data_key(&engine, &public, 2);
                let operation = match &request.op {
                    OnPremOp::Reset { password, unlock, force_change, by_admin } => relay::Operation::Reset {
                        password: hub.seal(&key, password),
                        unlock: *unlock,
                        force_change: *force_change,
                        by_admin: *by_admin,
                    },
                    OnPremOp::Change { old, new } => relay::Operation::Change { old: hub.seal(&key, old), new: hub.seal(&key, new) },
                    OnPremOp::Unlock => relay::Operation::Unlock,
                };
                let timeout = *hub.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let deadline = SystemTime::now() + timeout;
                let deadline_ms = deadline.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
                st = hub.state();
                st.pending.insert(id, (link_id, tx));
                drop(st);
                let msg = ToEngine::Request {
                    id,
                    anchor: request.anchor.clone(),
                    user_principal_name: request.user_principal_name.clone(),
                    distinguished_name: Some(request.distinguished_name.clone()).filter(|d| !d.is_empty()),
                    operation,
                    deadline_ms,
                };
                if link.send(msg).is_err() {
                    hub.state().pending.remove(&id);
                    return Err(WritebackError::Unreachable);
                }
            }
            // the engine commits only before the deadline and answers within the grace
            let timeout = *hub.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let answer = tokio::time::timeout(timeout + Duration::from_millis(relay::WRITE_GRACE_MS), rx).await;
            hub.state().pending.remove(&id);
            match answer {
                Ok(Ok(Outcome::Succeeded)) => Ok(()),
                Ok(Ok(Outcome::Failed { failure, event })) => Err(match failure {
                    relay::Failure::PasswordPolicy => WritebackError::Policy,
                    relay::Failure::Permissions => WritebackError::AccessDenied,
                    relay::Failure::IncorrectPassword => WritebackError::BadOldPassword,
                    _ => WritebackError::OnPremises(event),
                }),
                // the engine refused it unwritten, went away, or did not answer in time
                Ok(Ok(Outcome::NotWritten)) | Ok(Err(_)) | Err(_) => Err(WritebackError::Unreachable),
            }
        })
    }
}

// ----- HTTP -----

/// `POST /lab/writeback/engines` `{"displayName", "publicKey"}` (SPKI DER, base64, RSA ≥ 2048):
/// onboarding, as the Connect wizard does it with a Global Administrator's token. `201`
/// with `{"id", "relayCredential", "relayUrl"}`; the credential is shown only here.
pub(super) async fn register(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let name = m.get("displayName").and_then(Value::as_str).unwrap_or("writeback engine");
    let kind = match m.get("agentKind") {
        None => relay::AgentKind::ConnectSync,
        Some(v) => match v.as_str().and_then(|k| serde_json::from_value::<relay::AgentKind>(json!(k)).ok()) {
            Some(k) => k,
            None => {
                return graph_error(
                    &s,
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "Invalid value for property 'agentKind': ConnectSync or CloudSync.",
                );
            }
        },
    };
    let Some(key) = m.get("publicKey").and_then(Value::as_str).and_then(|k| relay::public_key_from_b64(k).ok()) else {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid value for property 'publicKey': an RSA public key of 2048 bits or more (SPKI DER, base64).",
        );
    };
    let (id, credential) = s.relay.register(name, key, kind);
    let relay_url = format!("{}{}", s.base_for(&headers).replacen("https://", "wss://", 1), relay::RELAY_PATH);
    (StatusCode::CREATED, Json(json!({ "id": id.to_string(), "relayCredential": format!("{id}.{credential}"), "relayUrl": relay_url })))
        .into_response()
}

/// `GET /lab/writeback/engines`: registered engines, connected or not, with their last beat.
pub(super) async fn list(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    Json(json!({ "value": s.relay.status() })).into_response()
}

/// `GET`/`PATCH /lab/writeback/settings` `{"timeoutMs"}`: how long a caller waits for
/// on-premises before Entra's "can't reach on-premises" answer (default 10,000 ms).
pub(super) async fn get_settings(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let t = *s.relay.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let cloud_write_fails = s.lock().cloud_write_fails;
    Json(json!({ "timeoutMs": t.as_millis() as u64, "cloudWriteFails": cloud_write_fails })).into_response()
}

pub(super) async fn patch_settings(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let refuse = || {
        let msg = "Expected {\"timeoutMs\": 1..600000} and/or {\"cloudWriteFails\": bool}.";
        graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", msg)
    };
    let timeout = match m.get("timeoutMs") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(ms @ 1..=600_000) => Some(ms),
            _ => return refuse(),
        },
    };
    let cloud_fails = match m.get("cloudWriteFails") {
        None => None,
        Some(v) => match v.as_bool() {
            Some(b) => Some(b),
            None => return refuse(),
        },
    };
    if m.is_empty() || m.len() != usize::from(timeout.is_some()) + usize::from(cloud_fails.is_some()) {
        return refuse();
    }
    if let Some(ms) = timeout {
        *s.relay.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Duration::from_millis(ms);
    }
    if let Some(b) = cloud_fails {
        s.lock().cloud_write_fails = b;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `DELETE /lab/writeback/engines/{id}`: offboarding.
pub(super) async fn remove(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    match Uuid::parse_str(&id).ok().filter(|id| s.relay.remove(id)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => no_such_resource(&s, &id),
    }
}

/// `GET /lab/writeback/relay` (WebSocket), `Authorization: Bearer {engineId}.{secret}`.
pub(super) async fn connect(State(s): State<Shared>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(engine) = s.relay.authenticate(auth) else {
        return graph_error(&s, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Unknown engine or wrong relay credential.");
    };
    ws.on_upgrade(move |socket| serve_link(s, engine, socket))
}

async fn serve_link(s: Shared, engine: Uuid, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let link_id = {
        let mut st = s.relay.state();
        st.next_link += 1;
        let n = st.next_link;
        match st.engines.get_mut(&engine) {
            Some(e) => {
                e.link = Some(tx);
                e.link_id = n;
                e.data_key = None;
            }
            None => return,
        }
        n
    };
    let incoming = |text: &str| match serde_json::from_str::<ToTenant>(text) {
        Ok(ToTenant::Heartbeat) => {
            let now = s.relay.now();
            if let Some(e) = s.relay.state().engines.get_mut(&engine) {
                e.last_heartbeat = Some(now);
            }
            Ok(Some(ToEngine::HeartbeatAck))
        }
        Ok(ToTenant::Answer { id, outcome }) => {
            if let Some((_, waiting)) = s.relay.state().pending.remove(&id) {
                let _ = waiting.send(outcome);
            }
            Ok(None)
        }
        Ok(ToTenant::SyncDone { id, report }) => {
            if let Some((_, waiting)) = s.relay.state().pending_sync.remove(&id) {
                let _ = waiting.send(report);
            }
            Ok(None)
        }
        Err(_) => Err(()),
    };
    // offboarded, or replaced by a newer connection of the same engine
    let current = || s.relay.state().engines.get(&engine).map(|e| e.link_id == link_id && e.link.is_some()).unwrap_or(false);
    pump(&mut socket, &mut rx, incoming, current).await;
    let mut st = s.relay.state();
    if let Some(e) = st.engines.get_mut(&engine).filter(|e| e.link_id == link_id) {
        e.link = None;
    }
    // what went out on this link will never be answered: its callers hear so at once
    st.pending.retain(|_, (l, _)| *l != link_id);
    st.pending_sync.retain(|_, (l, _)| *l != link_id);
}

/// How long an administrator's sync request waits for the engine's report.
const SYNC_WAIT: Duration = Duration::from_secs(120);

impl RelayHub {
    /// Asks the connected engine for a sync cycle and waits for its report (None: no engine
    /// connected, or it went away).
    pub async fn run_sync(&self, policy_type: relay::PolicyType) -> Option<relay::SyncReport> {
        let id = Uuid::new_v4();
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.state();
            // Start-ADSyncSyncCycle is Connect's; a lab with only Cloud Sync's agent asks it
            let (link, link_id) = st
                .engines
                .values()
                .filter(|e| e.link.is_some())
                .max_by_key(|e| (e.kind == relay::AgentKind::ConnectSync, e.last_heartbeat.clone()))
                .map(|e| (e.link.clone().expect("connected"), e.link_id))?;
            st.pending_sync.insert(id, (link_id, tx));
            if link.send(ToEngine::Sync { id, policy_type }).is_err() {
                st.pending_sync.remove(&id);
                return None;
            }
        }
        let report = tokio::time::timeout(SYNC_WAIT, rx).await.ok().and_then(Result::ok);
        self.state().pending_sync.remove(&id);
        report
    }
}

/// `POST /lab/sync` `{"policyType": "Delta" | "Initial"}` (default Delta), a Global
/// Administrator's token: `Start-ADSyncSyncCycle` from the cloud side. The tenant asks the
/// engine over its relay link (it never connects on-premises) and answers with the
/// cycle's report; 503 when no engine is connected.
pub(super) async fn run_sync(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = global_admin(&s, &headers) {
        return r;
    }
    let m = if body.is_empty() { Some(serde_json::Map::new()) } else { body_json(&body) };
    let Some(m) = m else { return unreadable_json(&s) };
    let policy = match m.get("policyType").and_then(Value::as_str).unwrap_or("Delta") {
        p if p.eq_ignore_ascii_case("delta") => relay::PolicyType::Delta,
        p if p.eq_ignore_ascii_case("initial") => relay::PolicyType::Initial,
        _ => return graph_error(&s, StatusCode::BAD_REQUEST, "Request_BadRequest", "policyType must be Delta or Initial."),
    };
    match s.relay.run_sync(policy).await {
        Some(report) => Json(report).into_response(),
        None => graph_error(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "No directory synchronization client is connected to this tenant.",
        ),
    }
}

/// `POST /lab/sync/export` (the engine's relay credential): a sync cycle's changes, applied
/// all at once; answers what was done ([`relay::ExportResult`]).
pub(super) async fn sync_export(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(kind) = s.relay.authenticate(auth).and_then(|id| s.relay.kind_of(&id)) else {
        return graph_error(&s, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "The relay credential is not valid.");
    };
    let Ok(export) = serde_json::from_slice::<relay::SyncExport>(&body) else { return unreadable_json(&s) };
    let result = crate::sync::apply(&mut s.lock(), &export, kind);
    Json(result).into_response()
}
