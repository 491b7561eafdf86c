//! Pass-through Authentication's agents: the one Connect installs beside itself and the
//! standalone ones (`lab up --pta-agents N`). Each registers with an administrator's token and
//! its own RSA key (RegisterConnector.ps1's part), holds an outbound WebSocket to the tenant's
//! queue, and answers each validation as Microsoft's agent does: it opens its own copy of the
//! password and asks AD — here with an LDAP simple bind as the user over LDAPS, the lab's
//! `LogonUser(LOGON32_LOGON_NETWORK)`, so a failed one counts in badPwdCount as a network logon
//! does, and it works against Samba too. AD's Win32 result goes back; failures are traced
//! as the agent's trace file has them ("Passthrough Authentication request failed.
//! RequestId: '…'. Reason: '1326'.").

use relay::pta::{FromAgent, ToAgent, Validation, win32};

use super::*;

/// What every agent of a lab shares: where the tenant and the DC are, and the agents' keys.
#[derive(Clone)]
pub struct AgentSetup {
    pub tenant_https: String,
    pub tenant_id: String,
    pub client_id: String,
    pub ca_pem: Vec<u8>,
    /// `ldaps://HOST:PORT` of a domain controller (the agent's DC locator).
    pub ldaps: String,
    pub clock: clock::Clock,
    /// Agent `n`'s RSA key (each agent its own; made once by the OS user's key store). Index
    /// [`relay::pta::MAX_AGENTS`] is a key no agent registers (the "wrong key" fault).
    pub keys: Arc<dyn Fn(usize) -> RsaPrivateKey + Send + Sync>,
}

/// The fault switches of one agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentFaults {
    /// The agent's service is stopped: no queue link (Inactive in the admin center).
    pub stopped: bool,
    /// Each validation is held this long before AD is asked.
    pub delay_ms: u64,
    /// The agent holds another private key than the one it registered.
    pub wrong_key: bool,
    /// The agent cannot reach any domain controller.
    pub directory_unreachable: bool,
}

/// One line of an agent's trace.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTrace {
    pub seq: u64,
    pub time: String,
    /// The agent's machine name.
    pub agent: String,
    pub level: &'static str,
    pub message: String,
}

/// What the lab's agents' trace keeps, all agents together (by estimate; the oldest go
/// first): its lines carry AD's texts.
const TRACE_BUDGET: usize = 1 << 20;

/// The lab's authentication agents.
pub struct Agents {
    setup: AgentSetup,
    list: Mutex<Vec<Agent>>,
    trace: Arc<Mutex<crate::Ring<AgentTrace>>>,
    /// One registration at a time (the count and the indexes of keys stay in step).
    installing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub struct Agent {
    inner: Arc<AgentInner>,
}

struct AgentInner {
    id: String,
    /// The same id, as the tenant's copies name it (parsed once, not per sign-in).
    uuid: uuid::Uuid,
    machine: String,
    with_connect: bool,
    credential: String,
    queue_url: String,
    key: RsaPrivateKey,
    wrong_key: RsaPrivateKey,
    keys: relay::KeyCache,
    tls: Arc<rustls::ClientConfig>,
    ldaps: String,
    faults: Mutex<AgentFaults>,
    changed: watch::Sender<()>,
    connected: AtomicBool,
    link_changed: Notify,
    shutdown: CancellationToken,
    /// Connections to the DC between validations (a bind as each user in turn).
    pool: Mutex<Vec<ldap3::Ldap>>,
    /// Performance counters: `# PTA authentications`, successful, failed, errors.
    counts: [AtomicU64; 4],
    trace: Arc<Mutex<crate::Ring<AgentTrace>>>,
    clock: clock::Clock,
}

/// Connections an agent keeps open to the DC between validations.
const POOL_KEPT: usize = 16;

impl Agents {
    pub fn new(setup: AgentSetup) -> Arc<Agents> {
        Arc::new(Agents {
            setup,
            list: Mutex::default(),
            trace: Arc::new(Mutex::new(crate::Ring::new(TRACE_BUDGET))),
            installing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn all(&self) -> Vec<Agent> {
        self.list.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The agent installed with Connect, if any.
    pub fn connects(&self) -> Option<Agent> {
        self.all().into_iter().find(|a| a.inner.with_connect)
    }

    /// Installs an agent and registers it with `admin`'s credentials (a Hybrid Identity
    /// Administrator or a Global Administrator); returns once its queue link is up.
    pub async fn install(&self, with_connect: bool, admin_upn: &str, admin_password: &str) -> Result<Agent, Error> {
        let _one = self.installing.lock().await;
        if with_connect && let Some(a) = self.connects() {
            return Ok(a);
        }
        let n = self.all().len();
        if n >= relay::pta::MAX_AGENTS {
            return Err(Error(format!("at most {} authentication agents a tenant", relay::pta::MAX_AGENTS)));
        }
        let machine = if with_connect { "CONNECT1".to_string() } else { format!("PTA{}", n + 1) };
        let keys = self.setup.keys.clone();
        // a key made the first time this OS user runs agent n (kept after): off the runtime's threads
        let (key, wrong_key) = tokio::task::spawn_blocking(move || (keys(n), keys(relay::pta::MAX_AGENTS)))
            .await
            .map_err(|e| Error(format!("agent key: {e}")))?;
        let s = &self.setup;
        let (cfg, http, token) = self.admin(admin_upn, admin_password).await?;
        let r = http
            .post(format!("{}{}", cfg.tenant_https, relay::pta::AGENTS_PATH))
            .bearer_auth(&token)
            .json(&json!({ "machineName": machine, "publicKey": relay::public_key_to_b64(&key.to_public_key()) }))
            .send()
            .await
            .map_err(|e| Error(e.to_string()))?;
        let status = r.status();
        let reg: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = reg["error"]["message"].as_str().unwrap_or_default();
            return Err(Error(format!("the tenant refused the agent's registration: HTTP {status} {why}")));
        }
        let inner = Arc::new(AgentInner {
            id: reg["id"].as_str().unwrap_or_default().into(),
            uuid: reg["id"].as_str().and_then(|id| uuid::Uuid::parse_str(id).ok()).unwrap_or_default(),
            machine,
            with_connect,
            credential: reg["credential"].as_str().unwrap_or_default().into(),
            queue_url: reg["queueUrl"].as_str().unwrap_or_default().into(),
            key,
            wrong_key,
            keys: relay::KeyCache::default(),
            tls: tls(&s.ca_pem)?,
            ldaps: s.ldaps.replace("127.0.0.1", "localhost"),
            faults: Mutex::default(),
            changed: watch::Sender::new(()),
            connected: AtomicBool::new(false),
            link_changed: Notify::new(),
            shutdown: CancellationToken::new(),
            pool: Mutex::default(),
            counts: Default::default(),
            trace: self.trace.clone(),
            clock: s.clock.clone(),
        });
        let agent = Agent { inner };
        agent.log("Information", format!("Authentication Agent {} registered with the tenant and started.", agent.inner.id));
        tokio::spawn(run(agent.inner.clone()));
        self.list.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(agent.clone());
        if !agent.wait_link(true, Duration::from_secs(10)).await {
            return Err(Error("the agent's queue link did not come up in 10 s".into()));
        }
        Ok(agent)
    }

    /// The administrator's session with the tenant, as the agent's registration tool signs in.
    async fn admin(&self, upn: &str, password: &str) -> Result<(Config, reqwest::Client, String), Error> {
        let s = &self.setup;
        let cfg = Config {
            tenant_https: s.tenant_https.clone(),
            tenant_id: s.tenant_id.clone(),
            client_id: s.client_id.clone(),
            ca_pem: s.ca_pem.clone(),
            ldaps: s.ldaps.clone(),
            ..Config::minimal(s.clock.clone(), relay::AgentKind::ConnectSync)
        };
        match admin_session(&cfg, upn, password).await {
            Ok((http, token)) => Ok((cfg, http, token)),
            Err(SignIn::Unreachable(e)) => Err(Error(format!("the tenant cannot be reached: {e}"))),
            Err(SignIn::NoToken(codes)) => Err(Error(format!("no token for {upn} ({codes})"))),
        }
    }

    /// The trace lines after `seq`, all agents together.
    pub fn trace_since(&self, seq: u64) -> Vec<AgentTrace> {
        self.trace.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().filter(|l| l.seq > seq).cloned().collect()
    }

    /// Ends every agent's link (the lab stopping).
    pub fn shutdown(&self) {
        for a in self.all() {
            a.inner.shutdown.cancel();
        }
    }
}

impl Agent {
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn machine_name(&self) -> &str {
        &self.inner.machine
    }

    pub fn installed_with_connect(&self) -> bool {
        self.inner.with_connect
    }

    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst)
    }

    pub fn faults(&self) -> AgentFaults {
        *self.inner.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the faults; a stop or start waits (at most 10 s) for the link to follow.
    pub async fn set_faults(&self, f: AgentFaults) -> bool {
        let was = std::mem::replace(&mut *self.inner.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner), f);
        self.inner.changed.send_replace(());
        if was.stopped != f.stopped {
            self.log(
                "Information",
                if f.stopped { "The Authentication Agent service stopped." } else { "The Authentication Agent service started." },
            );
            return self.wait_link(!f.stopped, Duration::from_secs(10)).await;
        }
        true
    }

    /// The performance counters: authentications, successful, failed (AD refused), errors.
    pub fn counters(&self) -> [u64; 4] {
        let c = &self.inner.counts;
        [0, 1, 2, 3].map(|i| c[i].load(Ordering::Relaxed))
    }

    pub fn status(&self) -> Value {
        let [total, ok, failed, errors] = self.counters();
        json!({
            "id": self.id(), "machineName": self.machine_name(), "installedWithConnect": self.installed_with_connect(),
            "connected": self.connected(), "faults": self.faults(),
            "counters": { "authentications": total, "successful": ok, "failed": failed, "errors": errors },
        })
    }

    async fn wait_link(&self, up: bool, limit: Duration) -> bool {
        wait_until(&self.inner.link_changed, || self.connected() == up, limit).await
    }

    fn log(&self, level: &'static str, message: impl Into<String>) {
        self.inner.log(level, message.into());
    }
}

impl AgentInner {
    fn log(&self, level: &'static str, message: String) {
        let time = self.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default();
        tracing::debug!(agent = %self.machine, %message, "authentication agent");
        let mut t = self.trace.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seq = t.last().map(|l| l.seq + 1).unwrap_or(1);
        let size = time.len() + self.machine.len() + message.len();
        t.push(size, AgentTrace { seq, time, agent: self.machine.clone(), level, message });
    }

    fn set_connected(&self, on: bool) {
        if self.connected.swap(on, Ordering::SeqCst) != on {
            self.link_changed.notify_waiters();
        }
    }

    fn faults(&self) -> AgentFaults {
        *self.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The agent's service: a queue link while it runs, reconnected with backoff.
async fn run(inner: Arc<AgentInner>) {
    let mut backoff = Duration::from_millis(50);
    let mut state = inner.changed.subscribe();
    loop {
        if inner.shutdown.is_cancelled() {
            break;
        }
        if inner.faults().stopped {
            tokio::select! {
                _ = state.changed() => {}
                _ = inner.shutdown.cancelled() => {}
            }
            continue;
        }
        match dial(&inner.queue_url, &inner.credential, &inner.tls).await {
            Ok(ws) => {
                backoff = Duration::from_millis(50);
                session(&inner, ws).await;
                inner.set_connected(false);
            }
            Err(e) => {
                inner.log("Warning", format!("Could not connect to the tenant's queue: {e}"));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = inner.shutdown.cancelled() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn session(inner: &Arc<AgentInner>, ws: Ws) {
    let (mut sink, mut stream) = ws.split();
    let (answers, mut outgoing) = mpsc::unbounded_channel::<FromAgent>();
    let beat = serde_json::to_string(&FromAgent::Heartbeat).unwrap_or_default();
    if sink.send(Message::Text(beat.clone().into())).await.is_err() {
        return;
    }
    let mut heartbeat = tokio::time::interval(Duration::from_secs(relay::HEARTBEAT_SECONDS));
    heartbeat.tick().await;
    let mut state = inner.changed.subscribe();
    state.mark_changed();
    // what this link took is dropped with it (an agent hands nothing over)
    let link = CancellationToken::new();
    loop {
        tokio::select! {
            _ = inner.shutdown.cancelled() => break,
            _ = state.changed() => {
                if inner.faults().stopped {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                if sink.send(Message::Text(beat.clone().into())).await.is_err() {
                    break;
                }
            }
            out = outgoing.recv() => {
                let Some(msg) = out else { break };
                let text = serde_json::to_string(&msg).unwrap_or_default();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            inc = stream.next() => {
                let text = match inc {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    _ => break,
                };
                match serde_json::from_str::<ToAgent>(&text) {
                    Ok(ToAgent::HeartbeatAck) => inner.set_connected(true),
                    Ok(ToAgent::Validate { id, user_principal_name, copies, deadline_ms: _ }) => {
                        let (inner, answers, link) = (inner.clone(), answers.clone(), link.clone());
                        tokio::spawn(async move {
                            let result = tokio::select! {
                                r = validate(&inner, id, &user_principal_name, &copies) => r,
                                _ = link.cancelled() => return,
                            };
                            let _ = answers.send(FromAgent::Validated { id, result });
                        });
                    }
                    Err(e) => inner.log("Error", format!("An invalid message from the queue: {e}")),
                }
            }
        }
    }
    link.cancel();
    inner.set_connected(false);
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

/// One validation: the agent's own copy opened, AD asked, the result counted and traced.
async fn validate(inner: &AgentInner, id: uuid::Uuid, upn: &str, copies: &[relay::pta::AgentCopy]) -> Validation {
    let f = inner.faults();
    inner.counts[0].fetch_add(1, Ordering::Relaxed);
    if f.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
    }
    let mine = copies.iter().find(|c| c.agent == inner.uuid);
    // an agent holding another key has none of the data keys its own unwrapped: no cache
    let opened = mine.and_then(|c| {
        if f.wrong_key { c.password.open(&inner.wrong_key).ok() } else { c.password.open_cached(&inner.key, &inner.keys).ok() }
    });
    let Some(password) = opened else {
        inner.counts[3].fetch_add(1, Ordering::Relaxed);
        inner.log(
            "Error",
            format!("Passthrough Authentication request failed. RequestId: '{id}'. Reason: 'The password could not be decrypted.'."),
        );
        return Validation::CannotDecrypt;
    };
    let url = if f.directory_unreachable { UNREACHABLE_DC.to_string() } else { inner.ldaps.clone() };
    match logon(inner, &url, upn, &password).await {
        Ok(win32::SUCCESS) => {
            inner.counts[1].fetch_add(1, Ordering::Relaxed);
            Validation::Logon { win32: win32::SUCCESS }
        }
        Ok(code) => {
            inner.counts[2].fetch_add(1, Ordering::Relaxed);
            inner.log("Warning", format!("Passthrough Authentication request failed. RequestId: '{id}'. Reason: '{code}'."));
            Validation::Logon { win32: code }
        }
        Err(e) => {
            inner.counts[3].fetch_add(1, Ordering::Relaxed);
            inner.log(
                "Error",
                format!("Passthrough Authentication request failed. RequestId: '{id}'. Reason: 'The server is not operational. ({e})'."),
            );
            Validation::DirectoryUnreachable
        }
    }
}

/// Where an agent cut off from its DCs looks (nothing listens on port 1).
const UNREACHABLE_DC: &str = "ldaps://127.0.0.1:1";

/// `LogonUser` as an LDAP simple bind as the user: the Win32 result (AD's `data` code in a
/// refusal's diagnostic), or why no DC answered. A pooled connection that went bad is
/// replaced once.
async fn logon(inner: &AgentInner, url: &str, upn: &str, password: &str) -> Result<u32, String> {
    // an empty password would be an unauthenticated bind, which a DC "accepts"
    if password.is_empty() {
        return Ok(win32::LOGON_FAILURE);
    }
    for attempt in 0..2 {
        let pooled = (url == inner.ldaps).then(|| inner.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()).flatten();
        let fresh = pooled.is_none();
        let mut l = match pooled {
            Some(l) => l,
            None => {
                let (conn, l) = ldap_dial::connect(url, ldap_dial::Security::Url, inner.tls.clone(), Duration::from_secs(5))
                    .await
                    .map_err(|e| e.to_string())?;
                ldap3::drive!(conn);
                l
            }
        };
        match l.with_timeout(LDAP_OP_LIMIT).simple_bind(upn, password).await {
            Ok(r) => {
                let code = match r.rc {
                    0 => win32::SUCCESS,
                    49 => win32::from_diagnostic(&r.text).unwrap_or(win32::LOGON_FAILURE),
                    _ => return Err(format!("LDAP result {}: {}", r.rc, r.text)),
                };
                if url == inner.ldaps {
                    let mut pool = inner.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if pool.len() < POOL_KEPT {
                        pool.push(l);
                    }
                }
                return Ok(code);
            }
            Err(e) if fresh || attempt == 1 => return Err(e.to_string()),
            Err(_) => continue,
        }
    }
    Err("no answer".into())
}

/// The sign-in methods Connect's "Change user sign-in" task offers (Seamless SSO is not: it
/// needs Kerberos, which the lab does not speak).
pub use relay::pta::SignInMethod as Method;

impl Agents {
    /// Connect's task **Change user sign-in**, with the administrator's credentials: for
    /// pass-through authentication, the agent beside Connect installed and registered (if it
    /// is not), then the tenant's feature on; for password hash sync, the feature off (the
    /// agents stay installed, as they do).
    pub async fn change_sign_in(&self, method: Method, admin_upn: &str, admin_password: &str) -> Result<(), Error> {
        if method == Method::PassThroughAuthentication {
            self.install(true, admin_upn, admin_password).await?;
        }
        let (cfg, http, token) = self.admin(admin_upn, admin_password).await?;
        let on = method == Method::PassThroughAuthentication;
        let r = http
            .patch(format!("{}/lab/pta", cfg.tenant_https))
            .bearer_auth(&token)
            .json(&json!({ "enabled": on }))
            .send()
            .await
            .map_err(|e| Error(e.to_string()))?;
        if !r.status().is_success() {
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            return Err(Error(format!("HTTP {status}: {}", body["error"]["message"].as_str().unwrap_or_default())));
        }
        Ok(())
    }

    fn find(&self, which: &str) -> Vec<Agent> {
        self.all()
            .into_iter()
            .filter(|a| {
                which.eq_ignore_ascii_case("all") || a.id().eq_ignore_ascii_case(which) || a.machine_name().eq_ignore_ascii_case(which)
            })
            .collect()
    }
}

/// The agents' status and switches (`/lab/engine/pta…`, the lab administrator's):
/// `GET /lab/engine/pta[?since=N]` (agents, counters, trace lines after N);
/// `POST /lab/engine/pta/faults` `{"agent": "CONNECT1" | "PTA2" | id | "all", "stopped",
/// "delayMs", "wrongKey", "directoryUnreachable"}` (those given change);
/// `POST /lab/engine/pta/agents` `{"userPrincipalName", "password", "count"}` (standalone
/// agents installed and registered with that administrator);
/// `POST /lab/engine/sign-in` `{"method": "pta" | "phs", "userPrincipalName", "password"}`
/// (Connect's Change user sign-in task).
pub fn pta_router(slot: Arc<std::sync::OnceLock<Arc<Agents>>>) -> axum::Router {
    use axum::Json;
    use axum::extract::Query;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
        (status, Json(json!({ "error": { "code": code, "message": message.into() } }))).into_response()
    }
    fn none() -> Response {
        error(StatusCode::NOT_FOUND, "NotFound", "This lab runs no writeback engine, so no authentication agents.")
    }
    let (s1, s2, s3, s4) = (slot.clone(), slot.clone(), slot.clone(), slot);
    let status = move |Query(q): Query<std::collections::HashMap<String, String>>| {
        let agents = s1.get().cloned();
        async move {
            let Some(agents) = agents else { return none() };
            let since = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
            let list: Vec<Value> = agents.all().iter().map(Agent::status).collect();
            Json(json!({ "agents": list, "trace": agents.trace_since(since) })).into_response()
        }
    };
    let faults = move |Json(body): Json<Value>| {
        let agents = s2.get().cloned();
        async move {
            let Some(agents) = agents else { return none() };
            let which = body["agent"].as_str().unwrap_or("all");
            let bools = ["stopped", "wrongKey", "directoryUnreachable"];
            let known = body.as_object().is_some_and(|m| {
                m.iter().all(|(k, v)| match k.as_str() {
                    "agent" => v.is_string(),
                    "delayMs" => v.as_u64().is_some_and(|ms| ms <= MAX_DELAY_MS),
                    k => bools.contains(&k) && v.is_boolean(),
                })
            });
            if !known {
                let msg = format!(
                    "Expected {{\"agent\": name | id | \"all\", \"stopped\": bool, \"delayMs\": 0..{MAX_DELAY_MS}, \"wrongKey\": bool, \"directoryUnreachable\": bool}}."
                );
                return error(StatusCode::BAD_REQUEST, "BadRequest", msg);
            }
            let chosen = agents.find(which);
            if chosen.is_empty() {
                return error(StatusCode::NOT_FOUND, "NotFound", format!("No authentication agent '{which}' in this lab."));
            }
            for a in &chosen {
                let mut f = a.faults();
                f.stopped = body["stopped"].as_bool().unwrap_or(f.stopped);
                f.delay_ms = body["delayMs"].as_u64().unwrap_or(f.delay_ms);
                f.wrong_key = body["wrongKey"].as_bool().unwrap_or(f.wrong_key);
                f.directory_unreachable = body["directoryUnreachable"].as_bool().unwrap_or(f.directory_unreachable);
                if !a.set_faults(f).await {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        format!("{}'s queue link did not follow in 10 s.", a.machine_name()),
                    );
                }
            }
            Json(json!({ "agents": chosen.iter().map(Agent::status).collect::<Vec<_>>() })).into_response()
        }
    };
    let install = move |Json(body): Json<Value>| {
        let agents = s3.get().cloned();
        async move {
            let Some(agents) = agents else { return none() };
            let (upn, pw) = (body["userPrincipalName"].as_str().unwrap_or(""), body["password"].as_str().unwrap_or(""));
            let count = body["count"].as_u64().unwrap_or(1);
            if !(1..=relay::pta::MAX_AGENTS as u64).contains(&count) {
                return error(StatusCode::BAD_REQUEST, "BadRequest", format!("count: 1..{}", relay::pta::MAX_AGENTS));
            }
            let mut installed = vec![];
            for _ in 0..count {
                match agents.install(false, upn, pw).await {
                    Ok(a) => installed.push(a.status()),
                    Err(e) => return error(StatusCode::BAD_REQUEST, "AgentRegistrationFailed", e.0),
                }
            }
            (StatusCode::CREATED, Json(json!({ "agents": installed }))).into_response()
        }
    };
    let sign_in = move |Json(body): Json<Value>| {
        let agents = s4.get().cloned();
        async move {
            let Some(agents) = agents else { return none() };
            let Some(method) = body["method"].as_str().and_then(Method::parse) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Expected {\"method\": \"pta\" | \"phs\", \"userPrincipalName\", \"password\"}.",
                );
            };
            let (upn, pw) = (body["userPrincipalName"].as_str().unwrap_or(""), body["password"].as_str().unwrap_or(""));
            match agents.change_sign_in(method, upn, pw).await {
                Ok(()) => Json(json!({ "method": method.short() })).into_response(),
                Err(e) => error(StatusCode::BAD_REQUEST, "SignInChangeFailed", e.0),
            }
        }
    };
    axum::Router::new()
        .route("/lab/engine/pta", get(status))
        .route("/lab/engine/pta/faults", post(faults))
        .route("/lab/engine/pta/agents", post(install))
        .route("/lab/engine/sign-in", post(sign_in))
}
