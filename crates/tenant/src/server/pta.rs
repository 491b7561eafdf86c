//! Pass-through authentication's cloud side: authentication agents register (a Hybrid
//! Identity Administrator's or Global Administrator's token and the agent's own RSA key),
//! hold an outbound WebSocket to the tenant's queue, and answer validations. [`PtaHub::validate`]
//! seals a sign-in's password once for every registered agent, hands the request to one
//! connected agent (chosen at random: Entra balances nothing and hands nothing over), and
//! waits for its answer at most [`PtaHub::timeout`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use rand::{Rng, SeedableRng};
use relay::pta::{AgentCopy, FromAgent, ToAgent, Validation};
use sha2::Digest;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::signins::{AgentAnswer, SignInMethod};

struct Agent {
    display_name: String,
    public_key: rsa::RsaPublicKey,
    credential: [u8; 32],
    registered: String,
    link: Option<mpsc::UnboundedSender<ToAgent>>,
    link_id: u64,
    last_seen: Option<String>,
    /// When it was last heard of (its registration, its link, its beats), on the lab clock.
    seen_at: clock::OffsetDateTime,
    /// The link's data key and how many passwords it sealed.
    data_key: Option<(relay::DataKey, u64)>,
}

#[derive(Default)]
struct Registry {
    /// In registration order (the admin center lists them so).
    agents: Vec<(Uuid, Agent)>,
    pending: HashMap<Uuid, (u64, oneshot::Sender<Validation>)>,
    next_link: u64,
}

impl Registry {
    fn get_mut(&mut self, id: &Uuid) -> Option<&mut Agent> {
        self.agents.iter_mut().find(|(a, _)| a == id).map(|(_, a)| a)
    }
}

/// How long an agent that stopped answering stays on the admin center's list.
const INACTIVE_LISTED: std::time::Duration = std::time::Duration::from_secs(10 * 86_400);

pub struct PtaHub {
    state: Mutex<Registry>,
    clock: clock::Clock,
    /// Which connected agent takes a request: seeded, so a lab run replays.
    pick: Mutex<rand::rngs::StdRng>,
    /// How long a sign-in waits for its agent (AADSTS80002 after).
    pub timeout: Mutex<Duration>,
}

/// Why a registration was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyAgents;

impl PtaHub {
    pub fn new(clock: clock::Clock, seed: u64) -> PtaHub {
        PtaHub {
            state: Mutex::default(),
            clock,
            pick: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            timeout: Mutex::new(Duration::from_secs(10)),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> String {
        self.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default()
    }

    /// Registers an agent; its queue credential (returned once). At most
    /// [`relay::pta::MAX_AGENTS`] a tenant.
    pub fn register(&self, display_name: &str, public_key: rsa::RsaPublicKey) -> Result<(Uuid, String), TooManyAgents> {
        let id = Uuid::new_v4();
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let credential = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret);
        let agent = Agent {
            display_name: display_name.into(),
            public_key,
            credential: sha2::Sha256::digest(credential.as_bytes()).into(),
            registered: self.now(),
            link: None,
            link_id: 0,
            last_seen: None,
            seen_at: self.clock.now(),
            data_key: None,
        };
        let mut st = self.state();
        if st.agents.len() >= relay::pta::MAX_AGENTS {
            return Err(TooManyAgents);
        }
        st.agents.push((id, agent));
        Ok((id, credential))
    }

    pub fn remove(&self, id: &Uuid) -> bool {
        let mut st = self.state();
        let before = st.agents.len();
        st.agents.retain(|(a, _)| a != id);
        st.agents.len() != before
    }

    fn authenticate(&self, header: &str) -> Option<Uuid> {
        let (id, secret) = header.strip_prefix("Bearer ")?.split_once('.')?;
        let id = Uuid::parse_str(id).ok()?;
        let st = self.state();
        let (_, a) = st.agents.iter().find(|(a, _)| *a == id)?;
        credential_matches(&a.credential, secret).then_some(id)
    }

    /// The agents as the admin center lists them: Active while connected, else Inactive; an
    /// agent inactive for 10 days drops off the list (Microsoft's PTA FAQ).
    pub fn status(&self) -> Vec<Value> {
        let now = self.clock.now();
        self.state()
            .agents
            .iter()
            .filter(|(_, a)| a.link.is_some() || now - a.seen_at < INACTIVE_LISTED)
            .map(|(id, a)| {
                json!({
                    "id": id.to_string(), "machineName": a.display_name,
                    "status": if a.link.is_some() { "active" } else { "inactive" },
                    "registeredDateTime": a.registered, "lastSeenDateTime": a.last_seen,
                })
            })
            .collect()
    }

    pub fn any_active(&self) -> bool {
        self.state().agents.iter().any(|(_, a)| a.link.is_some())
    }

    /// A sign-in's password to AD through one agent: sealed for every registered agent, sent
    /// to one connected agent, its answer awaited until the timeout.
    pub async fn validate(&self, user_principal_name: &str, password: &str) -> AgentAnswer {
        let id = Uuid::new_v4();
        let (tx, rx) = oneshot::channel();
        let timeout = *self.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let agent = {
            let mut st = self.state();
            let connected: Vec<usize> = (0..st.agents.len()).filter(|&i| st.agents[i].1.link.is_some()).collect();
            if connected.is_empty() {
                return AgentAnswer::NoAgent;
            }
            let chosen = connected[self.pick.lock().unwrap_or_else(std::sync::PoisonError::into_inner).gen_range(0..connected.len())];
            // once per registered agent, each under that agent's data key (one RSA
            // operation per agent and link, not per sign-in)
            let copies: Vec<AgentCopy> = st
                .agents
                .iter_mut()
                .map(|(agent, a)| {
                    let key = match &mut a.data_key {
                        Some((k, n)) if *n < relay::DATA_KEY_USES => {
                            *n += 1;
                            k.clone()
                        }
                        slot => {
                            let k = relay::DataKey::new(&a.public_key, &mut rand::rngs::OsRng);
                            *slot = Some((k.clone(), 1));
                            k
                        }
                    };
                    AgentCopy { agent: *agent, password: key.seal(password, &mut rand::rngs::OsRng) }
                })
                .collect();
            let (agent, a) = &st.agents[chosen];
            let (agent, link, link_id) = (*agent, a.link.clone().expect("connected"), a.link_id);
            let deadline = SystemTime::now() + timeout;
            let deadline_ms = deadline.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
            st.pending.insert(id, (link_id, tx));
            let msg = ToAgent::Validate { id, user_principal_name: user_principal_name.into(), copies, deadline_ms };
            if link.send(msg).is_err() {
                st.pending.remove(&id);
                return AgentAnswer::NoAgent;
            }
            agent
        };
        let answer = tokio::time::timeout(timeout, rx).await;
        self.state().pending.remove(&id);
        match answer {
            Ok(Ok(Validation::Logon { win32 })) => AgentAnswer::Logon { win32, agent },
            Ok(Ok(Validation::CannotDecrypt)) => AgentAnswer::CannotDecrypt { agent },
            Ok(Ok(Validation::DirectoryUnreachable)) => AgentAnswer::DirectoryUnreachable { agent },
            // the agent went away mid-request: the sign-in is dropped, never handed over
            Ok(Err(_)) | Err(_) => AgentAnswer::TimedOut { agent },
        }
    }
}

// ----- HTTP -----

/// `POST /lab/pta/agents` `{"machineName", "publicKey"}` (SPKI DER, base64, RSA ≥ 2048): an
/// agent's registration, with a Hybrid Identity Administrator's or Global Administrator's
/// token. `201` `{"id", "credential", "queueUrl"}`; the credential is shown only here.
pub(super) async fn register(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let name = m.get("machineName").and_then(Value::as_str).unwrap_or("authentication agent");
    let Some(key) = m.get("publicKey").and_then(Value::as_str).and_then(|k| relay::public_key_from_b64(k).ok()) else {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid value for property 'publicKey': an RSA public key of 2048 bits or more (SPKI DER, base64).",
        );
    };
    match s.pta.register(name, key) {
        Ok((id, credential)) => {
            let queue = format!("{}{}", s.base_for(&headers).replacen("https://", "wss://", 1), relay::pta::QUEUE_PATH);
            (StatusCode::CREATED, Json(json!({ "id": id.to_string(), "credential": format!("{id}.{credential}"), "queueUrl": queue })))
                .into_response()
        }
        Err(TooManyAgents) => graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("This tenant already has {} Authentication Agents, the most it may have.", relay::pta::MAX_AGENTS),
        ),
    }
}

/// `GET /lab/pta/agents`: the registered agents, Active or Inactive.
pub(super) async fn list(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    Json(json!({ "value": s.pta.status() })).into_response()
}

/// `DELETE /lab/pta/agents/{id}`.
pub(super) async fn remove(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    match Uuid::parse_str(&id).ok().filter(|id| s.pta.remove(id)) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => no_such_resource(&s, &id),
    }
}

/// `GET /lab/pta`: the tenant's sign-in method and its agents.
pub(super) async fn get_feature(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    Json(feature(&s)).into_response()
}

fn feature(s: &TenantServer) -> Value {
    let method = s.lock().sign_in_method;
    json!({
        "enabled": method == SignInMethod::PassThroughAuthentication,
        "signInMethod": method,
        "agents": s.pta.status(),
    })
}

/// `PATCH /lab/pta` `{"enabled": bool}`: what Connect's "Change user sign-in" task sets. PTA
/// cannot be turned on while no agent is active (Microsoft's PTA troubleshooting page).
pub(super) async fn patch_feature(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = hybrid_admin(&s, &headers) {
        return r;
    }
    let Some(m) = body_json(&body) else { return unreadable_json(&s) };
    let Some(enabled) = m.get("enabled").and_then(Value::as_bool).filter(|_| m.len() == 1) else {
        return bad_body(&s, "{\"enabled\": true | false}");
    };
    if enabled && !s.pta.any_active() {
        return graph_error(
            &s,
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Pass-through authentication cannot be enabled: no Authentication Agent is active in this tenant.",
        );
    }
    s.lock().sign_in_method = if enabled { SignInMethod::PassThroughAuthentication } else { SignInMethod::PasswordHashSync };
    Json(feature(&s)).into_response()
}

/// `GET`/`PATCH /lab/pta/settings` `{"timeoutMs"}` (the lab's switch): how long a sign-in
/// waits for its agent before AADSTS80002.
pub(super) async fn get_settings(State(s): State<Shared>) -> Response {
    let t = *s.pta.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    Json(json!({ "timeoutMs": t.as_millis() as u64 })).into_response()
}

pub(super) async fn patch_settings(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let ms = body_json(&body).filter(|m| m.len() == 1).and_then(|m| m.get("timeoutMs").and_then(Value::as_u64));
    let Some(ms @ 1..=600_000) = ms else { return bad_body(&s, "{\"timeoutMs\": 1..600000}") };
    *s.pta.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Duration::from_millis(ms);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /lab/pta/queue` (WebSocket), `Authorization: Bearer {agentId}.{secret}`.
pub(super) async fn connect(State(s): State<Shared>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(agent) = s.pta.authenticate(auth) else {
        return graph_error(&s, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Unknown agent or wrong credential.");
    };
    ws.on_upgrade(move |socket| serve_link(s, agent, socket))
}

async fn serve_link(s: Shared, agent: Uuid, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let link_id = {
        let mut st = s.pta.state();
        st.next_link += 1;
        let n = st.next_link;
        match st.get_mut(&agent) {
            Some(a) => {
                a.link = Some(tx);
                a.link_id = n;
                a.data_key = None;
            }
            None => return,
        }
        n
    };
    let seen = || {
        let (now, at) = (s.pta.now(), s.pta.clock.now());
        if let Some(a) = s.pta.state().get_mut(&agent) {
            a.last_seen = Some(now);
            a.seen_at = at;
        }
    };
    seen();
    let incoming = |text: &str| match serde_json::from_str::<FromAgent>(text) {
        Ok(FromAgent::Heartbeat) => {
            seen();
            Ok(Some(ToAgent::HeartbeatAck))
        }
        Ok(FromAgent::Validated { id, result }) => {
            if let Some((_, waiting)) = s.pta.state().pending.remove(&id) {
                let _ = waiting.send(result);
            }
            Ok(None)
        }
        Err(_) => Err(()),
    };
    let current = || s.pta.state().get_mut(&agent).map(|a| a.link_id == link_id && a.link.is_some()).unwrap_or(false);
    pump(&mut socket, &mut rx, incoming, current).await;
    let mut st = s.pta.state();
    if let Some(a) = st.get_mut(&agent).filter(|a| a.link_id == link_id) {
        a.link = None;
    }
    // what this agent took will not be answered: those sign-ins fail now
    st.pending.retain(|_, (l, _)| *l != link_id);
}
