//! The writeback engine: the role Azure AD Connect's password writeback plays. It onboards
//! with the tenant once (a Global Administrator's token, a fresh RSA key, a relay
//! credential; the sync side's writeback flag), keeps an outbound WebSocket to the tenant's
//! relay (heartbeats, reconnect with backoff), and carries each password operation to AD over
//! LDAPS as the connector account: the object found by its sourceAnchor, the password
//! opened only in memory, AD's answer sent back and logged as Connect's events.
//!
//! It reaches the tenant only over HTTPS/WSS and the AD DS only with the `ldap3` crate, so
//! it works against any AD-compatible directory.

pub mod events;
pub mod sync;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use ldap3::{Mod, Scope, SearchEntry};
use relay::{Failure, Operation, Outcome, ToEngine, ToTenant};
use rsa::RsaPrivateKey;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

pub use events::Event;
pub use sync::Baseline;

/// What the engine needs to know; the connector's credentials come from the environment
/// (here: the lab), as Connect keeps them in its configuration.
#[derive(Clone)]
pub struct Config {
    /// The tenant's https base (`https://localhost:PORT`).
    pub tenant_https: String,
    pub tenant_id: String,
    /// The public client the wizard signs in with.
    pub client_id: String,
    /// The CA that signs the tenant's and the DC's certificates (PEM).
    pub ca_pem: Vec<u8>,
    /// `ldaps://HOST:PORT` of a domain controller.
    pub ldaps: String,
    /// Its `ldap://HOST:PORT` (no TLS), used only while the "Sign and Encrypt LDAP traffic"
    /// fault is on (None: that fault cannot be thrown).
    pub ldap: Option<String>,
    pub connector_dn: String,
    pub connector_password: String,
    /// The domain partition the connector searches for anchors.
    pub base_dn: String,
    pub source_anchor: SourceAnchor,
    /// The OUs directory sync covers (DNs); empty: the whole domain.
    pub sync_scope: Vec<String>,
    pub clock: clock::Clock,
}

/// The attribute whose value (base64) is a synced user's onPremisesImmutableId, chosen when
/// Connect is installed. mS-DS-ConsistencyGuid is Connect's default since 1.1.524: it starts as
/// a copy of objectGUID, which Connect writes back, and survives moving the user to another
/// forest, where objectGUID does not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub enum SourceAnchor {
    #[default]
    #[serde(rename = "objectGUID")]
    ObjectGuid,
    #[serde(rename = "mS-DS-ConsistencyGuid")]
    ConsistencyGuid,
}

impl SourceAnchor {
    pub fn attribute(self) -> &'static str {
        match self {
            SourceAnchor::ObjectGuid => "objectGUID",
            SourceAnchor::ConsistencyGuid => "mS-DS-ConsistencyGuid",
        }
    }

    pub fn parse(s: &str) -> Option<SourceAnchor> {
        [SourceAnchor::ObjectGuid, SourceAnchor::ConsistencyGuid].into_iter().find(|a| a.attribute().eq_ignore_ascii_case(s))
    }
}

/// What onboarding leaves the engine with.
#[derive(Clone)]
pub struct Registration {
    pub engine_id: String,
    /// `{engineId}.{secret}`, shown once by the tenant.
    pub credential: String,
    pub relay_url: String,
    key: RsaPrivateKey,
}

#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn tls(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, Error> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.map_err(|e| Error(format!("CA: {e}")))?).map_err(|e| Error(format!("CA: {e}")))?;
    }
    // ring, named here: a lab inside another application never relies on (or installs) the
    // process-wide default provider
    #[allow(deprecated)] // ring on purpose: docs/security.md, "ring, not AWS-LC, for TLS"
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error(format!("TLS: {e}")))?;
    Ok(Arc::new(tls.with_root_certificates(roots).with_no_client_auth()))
}

/// Where `localhost` is (its port comes from each URL).
const LOCALHOST: std::net::SocketAddr = std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// An HTTPS client on `tls` (the lab's CA and nothing else: no OS store read).
fn https_client(tls: &rustls::ClientConfig, timeout: Option<Duration>) -> Result<reqwest::Client, Error> {
    let b = reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        // `localhost` is the loopback address (RFC 6761): no resolver call on a thread of the
        // blocking pool for each connection, a hop that costs most when the cores are busy
        .resolve("localhost", LOCALHOST);
    let b = match timeout {
        Some(t) => b.timeout(t),
        None => b,
    };
    b.build().map_err(|e| Error(e.to_string()))
}

/// One message of a writeback operation as it crossed the wire (for sequence diagrams):
/// `from` and `to` are `tenant`, `relay`, `engine` or `AD DS`. Never a password: unicodePwd
/// values show as `***`, and relay payloads are sealed anyway.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceLine {
    pub seq: u64,
    pub tracking_id: String,
    pub from: &'static str,
    pub to: &'static str,
    pub text: String,
}

/// The engine's event log (and its wire trace), shared by its tasks.
#[derive(Clone)]
pub struct EventLog {
    events: Arc<Mutex<std::collections::VecDeque<Event>>>,
    trace: Arc<Mutex<std::collections::VecDeque<TraceLine>>>,
    clock: clock::Clock,
}

/// How many events the engine's log keeps (the oldest go first).
pub const EVENTS_KEPT: usize = 10_000;

/// How many trace lines the engine keeps (the oldest go first).
const TRACE_KEPT: usize = 2_000;

impl EventLog {
    pub fn new(clock: clock::Clock) -> EventLog {
        EventLog { events: Arc::default(), trace: Arc::default(), clock }
    }

    pub(crate) fn trace(&self, tracking_id: &str, from: &'static str, to: &'static str, text: impl Into<String>) {
        let mut t = self.trace.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seq = t.back().map(|l| l.seq + 1).unwrap_or(1);
        // a ring, not a Vec drained at the front: that moved all 2,000 lines on every line
        if t.len() >= TRACE_KEPT {
            t.pop_front();
        }
        t.push_back(TraceLine { seq, tracking_id: tracking_id.to_string(), from, to, text: text.into() });
    }

    /// The trace lines after `seq` (0: all kept).
    pub fn trace_since(&self, seq: u64) -> Vec<TraceLine> {
        self.trace.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().filter(|l| l.seq > seq).cloned().collect()
    }

    pub fn log(&self, id: u32, message: impl Into<String>, tracking: Option<&str>) {
        let source = match id {
            6329 => "ADSync",
            events::PHS_FAILED | 656 | 657 => "Directory Synchronization",
            events::SYNC_STARTED..=events::SYNC_FAILED => "hybrid-lab",
            _ => "PasswordResetService",
        };
        let time = self.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default();
        let e = Event {
            id,
            source,
            name: events::name(id),
            level: events::level(id),
            message: message.into(),
            tracking_id: tracking.map(str::to_string),
            time,
        };
        tracing::debug!(id, source, message = %e.message, "writeback event");
        let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // an event log has a maximum size and overwrites its oldest events, as Windows' does
        if events.len() >= EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(e);
    }

    pub fn all(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }
}

/// Onboarding, as the Connect wizard does it: a Global Administrator's token (31017), the
/// engine's key (31018), registration with the tenant, and the sync side's writeback flag
/// (31004 → 31005). Failures log 32009 (token) or 32011 (service).
pub async fn onboard(
    cfg: &Config,
    key: RsaPrivateKey,
    admin_upn: &str,
    admin_password: &str,
    log: &EventLog,
) -> Result<Registration, Error> {
    log.log(31004, "Onboarding to the password reset service started.", None);
    let (http, token) = signed_in(cfg, admin_upn, admin_password, log).await?;
    log.log(31018, "Created the password encryption key (RSA-2048).", None);
    let reg = register(cfg, key, &http, &token, log).await?;
    writeback_on(&http, cfg, &token, log).await?;
    Ok(reg)
}

/// Onboarding's last step: the sync side's writeback flag on (31005, or 32011).
async fn writeback_on(http: &reqwest::Client, cfg: &Config, token: &str, log: &EventLog) -> Result<(), Error> {
    if let Err(e) = set_sync_writeback(http, cfg, token, true).await {
        log.log(32011, format!("Could not enable writeback on the sync side: {e}"), None);
        return Err(Error(format!("onboarding: {e}")));
    }
    log.log(31005, "Onboarding succeeded: password writeback is ready.", None);
    Ok(())
}

/// Connect installed with directory and password hash sync but without the "Password
/// writeback" optional feature: registered with the tenant (its sync service needs that),
/// the sync side's writeback flag left off, no onboarding events. The configuration
/// wizard's Password writeback → Configure is then [`Engine::enable_writeback`].
pub async fn install(
    cfg: &Config,
    key: RsaPrivateKey,
    admin_upn: &str,
    admin_password: &str,
    log: &EventLog,
) -> Result<Registration, Error> {
    let quiet = EventLog::new(cfg.clock.clone());
    let (http, token) = signed_in(cfg, admin_upn, admin_password, &quiet).await?;
    let reg = register(cfg, key, &http, &token, &quiet).await;
    if let Err(e) = &reg {
        log.log(32011, format!("Could not register with the tenant: {e}"), None);
    }
    reg
}

/// The wizard's "Connect to Microsoft Entra ID" page: a Global Administrator's token (31017;
/// 32011 when the tenant cannot be reached, 32009 when it refuses the credentials).
async fn signed_in(cfg: &Config, admin_upn: &str, admin_password: &str, log: &EventLog) -> Result<(reqwest::Client, String), Error> {
    match admin_session(cfg, admin_upn, admin_password).await {
        Ok(s) => {
            log.log(31017, format!("Got an authentication token for {admin_upn}."), None);
            Ok(s)
        }
        Err(SignIn::Unreachable(e)) => {
            log.log(32011, format!("Could not reach the tenant to onboard: {e}"), None);
            Err(Error(format!("onboarding: {e}")))
        }
        Err(SignIn::NoToken(codes)) => {
            log.log(32009, format!("Could not get a token for {admin_upn}: {codes}"), None);
            Err(Error(format!("onboarding: no token for {admin_upn} ({codes})")))
        }
    }
}

/// Registers the engine's public key with the tenant, which answers with the relay's address
/// and the engine's credential.
async fn register(cfg: &Config, key: RsaPrivateKey, http: &reqwest::Client, token: &str, log: &EventLog) -> Result<Registration, Error> {
    let public = relay::public_key_to_b64(&key.to_public_key());
    let r = http
        .post(format!("{}/lab/writeback/engines", cfg.tenant_https))
        .bearer_auth(token)
        .json(&json!({ "displayName": "hybrid-lab writeback engine", "publicKey": public }))
        .send()
        .await
        .map_err(|e| Error(e.to_string()))?;
    let status = r.status();
    let reg: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        log.log(32011, format!("The tenant refused the registration: HTTP {status}"), None);
        return Err(Error(format!("onboarding: HTTP {status} {reg}")));
    }
    Ok(Registration {
        engine_id: reg["id"].as_str().unwrap_or_default().into(),
        credential: reg["relayCredential"].as_str().unwrap_or_default().into(),
        relay_url: reg["relayUrl"].as_str().unwrap_or_default().into(),
        key,
    })
}

enum SignIn {
    Unreachable(String),
    /// The token endpoint's error codes.
    NoToken(String),
}

/// The wizard's sign-in: a client that trusts the lab CA, and a Global Administrator's token.
async fn admin_session(cfg: &Config, upn: &str, password: &str) -> Result<(reqwest::Client, String), SignIn> {
    let http = tls(&cfg.ca_pem).and_then(|tls| https_client(&tls, None)).map_err(|e| SignIn::Unreachable(e.0))?;
    let form = [
        ("grant_type", "password"),
        ("client_id", cfg.client_id.as_str()),
        ("username", upn),
        ("password", password),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let token_url = format!("{}/{}/oauth2/v2.0/token", cfg.tenant_https, cfg.tenant_id);
    let r = http.post(&token_url).form(&form).send().await.map_err(|e| SignIn::Unreachable(e.to_string()))?;
    let body: Value = r.json().await.unwrap_or(Value::Null);
    match body["access_token"].as_str() {
        Some(t) => Ok((http, t.to_string())),
        None => Err(SignIn::NoToken(body["error_codes"].to_string())),
    }
}

/// The sync side's passwordWritebackEnabled, as Connect sets it on and offboarding.
async fn set_sync_writeback(http: &reqwest::Client, cfg: &Config, token: &str, on: bool) -> Result<(), Error> {
    let r = http
        .patch(format!("{}/v1.0/directory/onPremisesSynchronization/{}", cfg.tenant_https, cfg.tenant_id))
        .bearer_auth(token)
        .json(&json!({ "features": { "passwordWritebackEnabled": on } }))
        .send()
        .await
        .map_err(|e| Error(e.to_string()))?;
    if r.status().is_success() { Ok(()) } else { Err(Error(format!("HTTP {}", r.status()))) }
}

pub(crate) struct Inner {
    cfg: Config,
    /// Fault: the connector's "Sign and Encrypt LDAP traffic" option is off (0x8023062C).
    unsealed: AtomicBool,
    /// Fault: the engine holds another private key than the one it registered (32004).
    wrong_key: Mutex<Option<RsaPrivateKey>>,
    reg: Registration,
    log: EventLog,
    tls: Arc<rustls::ClientConfig>,
    /// The service runs (a stopped service keeps no relay link). Changed only under
    /// `commit` so no request commits to AD after a stop has begun.
    running: AtomicBool,
    /// The commit point's lock (see [`Inner::commit`]).
    commit: Mutex<()>,
    /// Told when the last request in flight has queued its answer.
    drained: Notify,
    connected: AtomicBool,
    /// Fault injection: wait this long before touching AD.
    delay_ms: AtomicU64,
    /// Fault injection: how long a hash export waits, holding the hash-sync gate, before its
    /// hashes go out (the window in which a writeback must wait).
    export_delay_ms: AtomicU64,
    /// Requests received and not finished.
    in_flight: AtomicU64,
    /// Bumped by every stop, resume and shutdown. A watch, not a `Notify`: a stop made while
    /// the relay session is busy (not parked in its select) must still be seen — a lost
    /// wake-up kept a stopped service's link open for ever.
    changed: watch::Sender<()>,
    /// Told whenever the relay link comes up or goes down (`wait_connected`).
    link_changed: Notify,
    shutdown: watch::Sender<bool>,
    /// The connector's LDAP connection, reused across operations (ldap3 multiplexes).
    ldap: tokio::sync::Mutex<Option<ldap3::Ldap>>,
    /// The tenant's data keys, unwrapped once each.
    keys: relay::KeyCache,
    /// Directory and password hash sync: the connector space, one cycle at a time.
    sync: tokio::sync::Mutex<sync::SyncState>,
    sync_lock: tokio::sync::Mutex<()>,
    /// Writebacks hold it shared; password hash sync's export holds it alone.
    phs_gate: tokio::sync::RwLock<()>,
    /// Anchors written back since the current hash import began.
    written: Mutex<HashSet<String>>,
    rng: Mutex<rand::rngs::StdRng>,
    http: reqwest::Client,
}

/// The commit point's rule, apart from its lock: a write is admitted only while the service
/// runs and the link it came on is open (else nobody hears the answer), and before its
/// deadline (after it the tenant has told the user it failed).
fn admit(running: bool, link_open: bool, now_ms: u64, deadline_ms: u64) -> Result<(), Refused> {
    if !running || !link_open {
        return Err(Refused::Cancelled);
    }
    if now_ms >= deadline_ms {
        return Err(Refused::Expired);
    }
    Ok(())
}

/// Why a request was refused at the commit point: nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Its deadline passed: the tenant has told the user it failed.
    Expired,
    /// The service stopped, or the relay link it came on closed: nobody will hear the answer.
    Cancelled,
}

impl Inner {
    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::SeqCst);
        self.link_changed.notify_waiters();
    }

    /// Sets the service's state under the commit lock: once `stop` returns, no request that
    /// had not committed will write. True when it was running before.
    fn set_running(&self, on: bool) -> bool {
        let _gate = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.running.swap(on, Ordering::SeqCst)
    }

    /// The commit point, immediately before AD is written: the request may write only while
    /// the service runs, its link is open and its deadline has not passed. Those three and the
    /// count change under one lock, so a stop or a closed link either sees the request
    /// committed (and waits for its answer) or the request sees them (and writes nothing).
    fn commit(&self, link: &CancellationToken, deadline_ms: u64) -> Result<(), Refused> {
        let _gate = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        admit(self.running.load(Ordering::SeqCst), !link.is_cancelled(), now_ms(), deadline_ms)
    }

    /// Closes a link's door: no request that came on it commits from now on.
    fn close_link(&self, link: &CancellationToken) {
        let _gate = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        link.cancel();
    }

    /// Waits (at most `limit`) until every request in flight has queued its answer: those
    /// that wrote, and those the closed door turned away.
    async fn drain(&self, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.drained.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return false;
            }
        }
    }
}

/// A running engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Starts the service (31015) and its relay link; returns at once.
    pub fn start(cfg: Config, reg: Registration, log: EventLog) -> Result<Engine, Error> {
        let tls = tls(&cfg.ca_pem)?;
        // (a tenant that accepts an export and never answers must not hold a cycle for ever)
        // (the relay's WebSocket and the exports share one configuration: one CA parse)
        let http = https_client(&tls, Some(Duration::from_secs(30)))?;
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            cfg,
            unsealed: AtomicBool::new(false),
            wrong_key: Mutex::new(None),
            reg,
            log,
            tls,
            running: AtomicBool::new(true),
            commit: Mutex::new(()),
            drained: Notify::new(),
            connected: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            export_delay_ms: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            changed: watch::Sender::new(()),
            link_changed: Notify::new(),
            shutdown,
            ldap: tokio::sync::Mutex::new(None),
            keys: relay::KeyCache::default(),
            sync: tokio::sync::Mutex::new(sync::SyncState::default()),
            sync_lock: tokio::sync::Mutex::new(()),
            phs_gate: tokio::sync::RwLock::new(()),
            written: Mutex::default(),
            rng: Mutex::new(rand::SeedableRng::from_entropy()),
            http,
        });
        inner.log.log(31015, "The password writeback service started and is ready for requests from the cloud.", None);
        tokio::spawn(run(inner.clone()));
        Ok(Engine { inner })
    }

    pub fn id(&self) -> &str {
        &self.inner.reg.engine_id
    }

    pub fn events(&self) -> Vec<Event> {
        self.inner.log.all()
    }

    /// The wire trace of writeback operations after `seq` (see [`TraceLine`]).
    pub fn trace_since(&self, seq: u64) -> Vec<TraceLine> {
        self.inner.log.trace_since(seq)
    }

    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::SeqCst)
    }

    pub fn running(&self) -> bool {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Waits (real time, at most `limit`) until the relay link is up.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        self.wait_link(true, limit).await
    }

    /// Waits (real time, at most `limit`) until the relay link is down.
    pub async fn wait_disconnected(&self, limit: Duration) -> bool {
        self.wait_link(false, limit).await
    }

    /// Woken by the link's own change (no polling: a lab start waits for exactly this).
    async fn wait_link(&self, up: bool, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.inner.link_changed.notified();
            tokio::pin!(changed);
            // registered before the look, so a change in between is not missed
            changed.as_mut().enable();
            if self.connected() == up {
                return true;
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return self.connected() == up;
            }
        }
    }

    /// Stops the service (31016): the relay link closes; the tenant then answers callers as
    /// Entra does with no engine connected.
    pub fn stop(&self) {
        if self.inner.set_running(false) {
            self.inner.log.log(31016, "The password writeback service stopped; cloud requests will fail.", None);
            self.inner.changed.send_replace(());
        }
    }

    /// Starts it again (31015).
    pub fn resume(&self) {
        if !self.inner.set_running(true) {
            self.inner.log.log(31015, "The password writeback service started and is ready for requests from the cloud.", None);
            self.inner.changed.send_replace(());
        }
    }

    /// Fault injection: hold each request this long before acting on it.
    pub fn set_delay(&self, d: Duration) {
        self.inner.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Fault injection: hold each hash export this long, with the hash-sync gate taken, before
    /// its hashes go out (writebacks wait for it, as they must).
    pub fn set_export_delay(&self, d: Duration) {
        self.inner.export_delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// The configuration wizard's Optional features → Password writeback → Configure, on an
    /// engine installed without it ([`install`]): 31004, a Global Administrator's token
    /// (31017), the key (31018), the sync side's writeback flag, 31005 — or 32009/32011 and
    /// 31004 alone when it fails. An offboarded engine is gone for good: refused.
    pub async fn enable_writeback(&self, admin_upn: &str, admin_password: &str) -> Result<(), Error> {
        if *self.inner.shutdown.borrow() {
            return Err(Error("this engine was offboarded; start the lab again to onboard a new one".into()));
        }
        let (cfg, log) = (&self.inner.cfg, &self.inner.log);
        log.log(31004, "Onboarding to the password reset service started.", None);
        let (http, token) = signed_in(cfg, admin_upn, admin_password, log).await?;
        log.log(31018, "Created the password encryption key (RSA-2048).", None);
        writeback_on(&http, cfg, &token, log).await
    }

    /// Offboarding, as disabling writeback in the Connect wizard does it (31012 → 31013, or
    /// 31014): with a Global Administrator's token the registration is removed and the sync
    /// side's writeback flag turned off; the service stops for good.
    pub async fn offboard(&self, admin_upn: &str, admin_password: &str) -> Result<(), Error> {
        let log = &self.inner.log;
        log.log(31012, "Offboarding from the password reset service started.", None);
        let result = self.try_offboard(admin_upn, admin_password).await;
        match &result {
            Ok(()) => {
                log.log(31013, "Offboarding succeeded: password writeback is disabled.", None);
                self.stop();
                let _ = self.inner.shutdown.send(true);
            }
            Err(e) => log.log(31014, format!("Offboarding failed: {e}"), None),
        }
        result
    }

    async fn try_offboard(&self, admin_upn: &str, admin_password: &str) -> Result<(), Error> {
        let cfg = &self.inner.cfg;
        let (http, token) = admin_session(cfg, admin_upn, admin_password).await.map_err(|e| match e {
            SignIn::Unreachable(e) => Error(e),
            SignIn::NoToken(_) => Error(format!("no token for {admin_upn}")),
        })?;
        let r = http
            .delete(format!("{}/lab/writeback/engines/{}", cfg.tenant_https, self.id()))
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| Error(e.to_string()))?;
        if !r.status().is_success() {
            return Err(Error(format!("the tenant refused the offboarding: HTTP {}", r.status())));
        }
        set_sync_writeback(&http, cfg, &token, false).await
    }

    /// The lab's engine-side faults: the connector's "Sign and Encrypt LDAP traffic" off
    /// (writes go over plain LDAP, AD refuses unicodePwd: 33009, 0x8023062C), and a private
    /// key other than the registered one (every sealed password fails: 32004 DecryptionError
    /// — Microsoft's fix is to disable and re-enable writeback). `None` leaves one as it is.
    pub async fn set_faults(&self, unsealed_ldap: Option<bool>, key_mismatch: Option<bool>) -> Result<(), Error> {
        if let Some(on) = unsealed_ldap {
            if on && self.inner.cfg.ldap.is_none() {
                return Err(Error("this engine knows no plain LDAP address for its DC".into()));
            }
            self.inner.unsealed.store(on, Ordering::SeqCst);
            // the next write opens a connection the new way
            *self.inner.ldap.lock().await = None;
        }
        if let Some(on) = key_mismatch {
            let key = if on {
                // any key but the registered one; made once a process (a key is 0.1-2 s of a core)
                static OTHER: std::sync::OnceLock<RsaPrivateKey> = std::sync::OnceLock::new();
                let k = match OTHER.get() {
                    Some(k) => k.clone(),
                    None => {
                        let k = tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)).await;
                        let k = k.map_err(|e| Error(e.to_string()))?.map_err(|e| Error(e.to_string()))?;
                        OTHER.get_or_init(|| k).clone()
                    }
                };
                Some(k)
            } else {
                None
            };
            *self.inner.wrong_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = key;
        }
        Ok(())
    }

    /// The faults as they stand: (unsealed LDAP, key mismatch).
    pub fn faults(&self) -> (bool, bool) {
        let wrong = self.inner.wrong_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some();
        (self.inner.unsealed.load(Ordering::SeqCst), wrong)
    }

    /// Ends the engine's tasks (the lab stopping).
    pub fn shutdown(&self) {
        self.inner.set_running(false);
        let _ = self.inner.shutdown.send(true);
        self.inner.changed.send_replace(());
    }

    /// Requests received and not yet finished (waiting out a delay, searching, writing).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst) as usize
    }

    /// A sync cycle now (`Start-ADSyncSyncCycle -PolicyType Initial | Delta`).
    pub async fn sync(&self, policy: relay::PolicyType) -> Result<relay::SyncReport, Error> {
        let r = sync::run(&self.inner, policy, true, true).await;
        let now = self.inner.cfg.clock.now();
        let mut st = self.inner.sync.lock().await;
        st.next_cycle = Some(now + sync::CYCLE_INTERVAL);
        st.next_hash_sync = Some(now + sync::HASH_INTERVAL);
        r
    }

    /// Runs what the schedule says is due by the lab clock: a delta cycle every 30 minutes,
    /// password hash sync every 2 minutes (from the engine's start). A frozen lab clock
    /// moves only when advanced; whoever advances it calls this.
    pub async fn run_due(&self) -> Option<relay::SyncReport> {
        if !self.running() {
            return None;
        }
        let now = self.inner.cfg.clock.now();
        let (cycle, hashes) = {
            let mut st = self.inner.sync.lock().await;
            let next_cycle = *st.next_cycle.get_or_insert(now + sync::CYCLE_INTERVAL);
            let next_hash = *st.next_hash_sync.get_or_insert(now + sync::HASH_INTERVAL);
            let (cycle, hashes) = (now >= next_cycle, now >= next_hash);
            if cycle {
                st.next_cycle = Some(now + sync::CYCLE_INTERVAL);
            }
            if hashes {
                st.next_hash_sync = Some(now + sync::HASH_INTERVAL);
            }
            (cycle, hashes)
        };
        if !cycle && !hashes {
            return None;
        }
        sync::run(&self.inner, relay::PolicyType::Delta, cycle, hashes).await.ok()
    }

    /// The connector space of a lab whose tenant starts already synced, read before the
    /// engine started ([`Baseline::read`] needs no tenant: a lab reads it while the engine
    /// onboards), and the connector's LDAP session it was read on; the schedule starts now.
    pub async fn adopt(&self, read: Baseline) {
        let session = read.session.clone();
        sync::adopt(&self.inner, read).await;
        let mut slot = self.inner.ldap.lock().await;
        if slot.is_none() {
            *slot = Some(session);
        }
        drop(slot);
        let now = self.inner.cfg.clock.now();
        let mut st = self.inner.sync.lock().await;
        st.next_cycle = Some(now + sync::CYCLE_INTERVAL);
        st.next_hash_sync = Some(now + sync::HASH_INTERVAL);
    }

    /// The status a Connect server would show: state, link, last events.
    pub fn status(&self) -> Value {
        json!({ "engineId": self.id(), "running": self.running(), "connected": self.connected(), "events": self.events() })
    }
}

/// The service loop: keep a relay link while running; reconnect with backoff.
async fn run(inner: Arc<Inner>) {
    let mut backoff = Duration::from_millis(50);
    let mut warned = false;
    let mut shutdown = inner.shutdown.subscribe();
    let mut state = inner.changed.subscribe();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if !inner.running.load(Ordering::SeqCst) {
            tokio::select! {
                _ = state.changed() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        match connect(&inner).await {
            Ok(ws) => {
                backoff = Duration::from_millis(50);
                warned = false;
                session(&inner, ws, &mut shutdown).await;
                inner.set_connected(false);
            }
            Err(e) => {
                if !warned {
                    inner.log.log(32002, format!("Error connecting to the relay: {e}"), None);
                    warned = true;
                } else {
                    inner.log.log(32014, "Retrying the relay connection.", None);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn connect(inner: &Inner) -> Result<Ws, Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = &inner.reg.relay_url;
    let rest = url.strip_prefix("wss://").ok_or_else(|| Error(format!("not a wss URL: {url}")))?;
    let hostport = rest.split('/').next().unwrap_or("");
    let host = hostport.rsplit_once(':').map(|(h, _)| h).unwrap_or(hostport).to_string();
    // (`localhost` is the loopback address, RFC 6761: connected without a resolver call)
    let tcp = match hostport.strip_prefix("localhost:").and_then(|p| p.parse::<u16>().ok()) {
        Some(port) => tokio::net::TcpStream::connect(std::net::SocketAddr::new(LOCALHOST.ip(), port)).await,
        None => tokio::net::TcpStream::connect(hostport).await,
    }
    .map_err(|e| Error(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| Error(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(inner.tls.clone()).connect(name, tcp).await.map_err(|e| Error(format!("TLS: {e}")))?;
    let mut req = url.as_str().into_client_request().map_err(|e| Error(e.to_string()))?;
    let auth = format!("Bearer {}", inner.reg.credential);
    req.headers_mut().insert("authorization", auth.parse().map_err(|_| Error("credential".into()))?);
    let (ws, _) = tokio_tungstenite::client_async(req, tls).await.map_err(|e| Error(e.to_string()))?;
    Ok(ws)
}

/// One relay link: heartbeats, requests in, answers out. When it ends (a stop, the lab
/// shutting down, the tenant closing it) its door closes first: requests that had not
/// committed write nothing, and those writing are waited for (at most their grace) so that
/// their answers still go out before the link closes.
async fn session(inner: &Arc<Inner>, ws: Ws, shutdown: &mut watch::Receiver<bool>) {
    let (mut sink, mut stream) = ws.split();
    let (answers, mut outgoing) = mpsc::unbounded_channel::<ToTenant>();
    let beat = serde_json::to_string(&ToTenant::Heartbeat).unwrap_or_default();
    if sink.send(Message::Text(beat.clone().into())).await.is_err() {
        return;
    }
    let link = CancellationToken::new();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(relay::HEARTBEAT_SECONDS));
    heartbeat.tick().await;
    let mut acked = false;
    let mut sink_open = true;
    let mut state = inner.changed.subscribe();
    // (a stop made before we subscribed is looked at on the first turn)
    state.mark_changed();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = state.changed() => {
                if !inner.running.load(Ordering::SeqCst) {
                    break;
                }
            }
            _ = heartbeat.tick() => {
                inner.log.log(31019, "Heartbeat sent to the relay.", None);
                if sink.send(Message::Text(beat.clone().into())).await.is_err() {
                    sink_open = false;
                    break;
                }
            }
            out = outgoing.recv() => {
                let Some(msg) = out else { break };
                let text = serde_json::to_string(&msg).unwrap_or_default();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    sink_open = false;
                    break;
                }
            }
            inc = stream.next() => {
                let text = match inc {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    _ => {
                        sink_open = false;
                        break;
                    }
                };
                match serde_json::from_str::<ToEngine>(&text) {
                    Ok(ToEngine::HeartbeatAck) => {
                        if !acked {
                            // the tenant has seen us: the link is up
                            acked = true;
                            inner.set_connected(true);
                        }
                    }
                    Ok(ToEngine::Request { id, anchor, user_principal_name, operation, deadline_ms }) => {
                        let (inner, answers, link) = (inner.clone(), answers.clone(), link.clone());
                        inner.in_flight.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(async move {
                            let req = Request { id, anchor: &anchor, upn: &user_principal_name, op: operation, deadline_ms };
                            let outcome = handle(&inner, &link, req).await;
                            let _ = answers.send(ToTenant::Answer { id, outcome });
                            // (after the answer is queued: a closing link waits for this)
                            if inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                                inner.drained.notify_waiters();
                            }
                        });
                    }
                    Ok(ToEngine::Sync { id, policy_type }) => {
                        let (engine, answers) = (Engine { inner: inner.clone() }, answers.clone());
                        tokio::spawn(async move {
                            let report = engine.sync(policy_type).await.unwrap_or_else(|e| relay::SyncReport {
                                policy_type: Some(policy_type),
                                errors: vec![relay::SyncError { code: "SyncCycleFailed".into(), distinguished_name: String::new(), message: e.0 }],
                                ..Default::default()
                            });
                            let _ = answers.send(ToTenant::SyncDone { id, report });
                        });
                    }
                    Err(e) => inner.log.log(32008, format!("An invalid message from the relay: {e}"), None),
                }
            }
        }
    }
    inner.close_link(&link);
    if sink_open {
        // what was written to AD is answered before the link goes: the tenant must never
        // report a failure for a password AD took (and what was turned away is said so)
        let grace = Duration::from_millis(relay::WRITE_GRACE_MS + 500);
        inner.drain(grace).await;
        while let Ok(msg) = outgoing.try_recv() {
            if let ToTenant::Answer { .. } = msg {
                let text = serde_json::to_string(&msg).unwrap_or_default();
                if tokio::time::timeout(grace, sink.send(Message::Text(text.into()))).await.map(|r| r.is_err()).unwrap_or(true) {
                    break;
                }
            }
        }
    }
    inner.set_connected(false);
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A password operation as it came over the relay.
struct Request<'a> {
    id: uuid::Uuid,
    anchor: &'a str,
    upn: &'a str,
    op: Operation,
    deadline_ms: u64,
}

/// One operation: the events Connect logs for it, AD's answer. [`Outcome::NotWritten`] when
/// it was refused at the commit point (expired, or its link or the service gone): nothing was
/// written, and the tenant tells the user it failed.
async fn handle(inner: &Inner, link: &CancellationToken, req: Request<'_>) -> Outcome {
    let Request { id, anchor, upn, op, deadline_ms } = req;
    let tracking = id.to_string();
    let t = Some(tracking.as_str());
    let (start, ok, fail) = match &op {
        Operation::Reset { by_admin: true, .. } => (31009, 31010, 31011),
        Operation::Reset { .. } | Operation::Unlock => (31001, 31002, 31003),
        Operation::Change { .. } => (31006, 31007, 31008),
    };
    let refused = |why: Refused| {
        let text = match why {
            Refused::Expired => format!("{} request for {upn} expired before it could be processed; nothing was changed.", a_kind(&op)),
            Refused::Cancelled => format!(
                "{} request for {upn} was cancelled before it was written (the service stopped or the relay link closed); nothing was changed.",
                a_kind(&op)
            ),
        };
        inner.log.log(32000, text, t);
        Outcome::NotWritten
    };
    // the fault switch's delay comes first, and never outlasts the deadline or the link
    let delay = inner.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        let until_deadline = Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(delay).min(until_deadline)) => {}
            _ = link.cancelled() => return refused(Refused::Cancelled),
        }
    }
    // password hash sync does not export while a writeback is on its way; a cycle holding
    // the gate is waited for only until the deadline
    let until = tokio::time::Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms()));
    let _writing = tokio::select! {
        g = tokio::time::timeout_at(until, inner.phs_gate.read()) => match g {
            Ok(g) => g,
            Err(_) => return refused(Refused::Expired),
        },
        _ = link.cancelled() => return refused(Refused::Cancelled),
    };
    // not begun at all when it is already too late (the commit point checks again before
    // the write itself)
    if now_ms() >= deadline_ms {
        return refused(Refused::Expired);
    }
    if link.is_cancelled() || !inner.running.load(Ordering::SeqCst) {
        return refused(Refused::Cancelled);
    }
    inner.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(anchor.to_string());
    let sealed = match &op {
        Operation::Unlock => "",
        _ => " (password sealed: RSA-OAEP-wrapped AES-256-GCM)",
    };
    inner.log.trace(&tracking, "tenant", "relay", format!("{} request for {upn}{sealed}", op.kind()));
    inner.log.trace(&tracking, "relay", "engine", format!("{} request for {upn}", op.kind()));
    inner.log.log(start, format!("{} request for {upn} was received from the cloud.", a_kind(&op)), t);
    let result = match write(inner, link, anchor, &op, &tracking, deadline_ms).await {
        Ok(()) => Ok(()),
        Err(Stop::Refusal(r)) => Err(r),
        Err(Stop::Refused(why)) => return refused(why),
    };
    let answer = match &result {
        Ok(()) => "succeeded".to_string(),
        Err((failure, _)) => format!("failed: {}", events::for_failure(*failure)),
    };
    inner.log.trace(&tracking, "engine", "relay", answer.clone());
    inner.log.trace(&tracking, "relay", "tenant", answer);
    match result {
        Ok(()) => {
            inner.log.log(ok, format!("The {} for {upn} was written to Active Directory.", op.kind()), t);
            Outcome::Succeeded
        }
        Err((failure, detail)) => {
            let event = events::for_failure(failure);
            inner.log.log(fail, format!("The {} for {upn} failed on-premises.", op.kind()), t);
            inner.log.log(event, format!("{} ({upn})", events::name(event)), t);
            if let Some(d) = detail {
                inner.log.log(6329, d, t);
            }
            Outcome::Failed { failure, event }
        }
    }
}

/// "A reset", "An admin reset", "An unlock", "A change": the start of an event's sentence.
fn a_kind(op: &Operation) -> String {
    let kind = op.kind();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "An" } else { "A" };
    format!("{article} {kind}")
}

type Refusal = (Failure, Option<String>);

/// The longest the engine waits for one LDAP answer before a write (a DC that accepts and
/// never answers must not hold a request, or a sync cycle, for ever).
pub(crate) const LDAP_OP_LIMIT: Duration = Duration::from_secs(5);

/// The connector's connection (and whether it is new): reused while it works, made again
/// when it does not.
pub(crate) async fn ldap(inner: &Inner) -> Result<(ldap3::Ldap, bool), Refusal> {
    let mut slot = inner.ldap.lock().await;
    // (ldap3's is_closed takes &mut self)
    if let Some(l) = slot.as_mut().map(|l| (l.is_closed(), l)).and_then(|(closed, l)| (!closed).then_some(l)) {
        return Ok((l.clone(), false));
    }
    let l = connector_session(&inner.cfg, &inner.tls, inner.unsealed.load(Ordering::SeqCst)).await?;
    *slot = Some(l.clone());
    Ok((l, true))
}

/// A new LDAP session bound as the AD connector account: LDAPS, or plain LDAP when the
/// "unsealed" fault asks for it.
async fn connector_session(cfg: &Config, tls: &Arc<rustls::ClientConfig>, unsealed: bool) -> Result<ldap3::Ldap, Refusal> {
    let url = match (&cfg.ldap, unsealed) {
        (Some(plain), true) => plain.clone(),
        _ => cfg.ldaps.replace("127.0.0.1", "localhost"),
    };
    // Windows' LDAP client says "server down" for a refused connection and an untrusted
    // certificate alike; the cause follows in brackets
    let unavailable = |e: String| (Failure::DirectoryUnavailable, Some(format!("{} ({url}: {e})", events::SERVER_DOWN)));
    let (conn, mut l) = ldap_dial::connect(&url, ldap_dial::Security::Url, tls.clone(), Duration::from_secs(5))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    ldap3::drive!(conn);
    let r = l
        .with_timeout(LDAP_OP_LIMIT)
        .simple_bind(&cfg.connector_dn, &cfg.connector_password)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    if r.rc != 0 {
        return Err((Failure::Permissions, Some(format!("The AD connector account could not sign in: {}", r.text))));
    }
    Ok(l)
}

/// The connection and the object for an anchor. A reused connection that went bad (the DC
/// restarted, or dropped idle connections) costs one more try on a new one, not a failure.
async fn connect_and_find(inner: &Inner, anchor: &str) -> Result<(ldap3::Ldap, String, i64), Refusal> {
    let (mut l, fresh) = ldap(inner).await?;
    match find(&mut l, &inner.cfg, anchor).await {
        Ok((dn, uac)) => Ok((l, dn, uac)),
        Err((Failure::DirectoryUnavailable, _)) if !fresh => {
            *inner.ldap.lock().await = None;
            let (mut l, _) = ldap(inner).await?;
            let (dn, uac) = find(&mut l, &inner.cfg, anchor).await?;
            Ok((l, dn, uac))
        }
        Err(e) => Err(e),
    }
}

/// The AD object for a sourceAnchor (base64 of the anchor attribute's 16 bytes): by AD's
/// `<GUID=…>` name for objectGUID, by a search of the domain for mS-DS-ConsistencyGuid
/// (two objects with one anchor: 33003, as Connect refuses to guess).
async fn find(l: &mut ldap3::Ldap, cfg: &Config, anchor: &str) -> Result<(String, i64), Refusal> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(anchor).map_err(|_| (Failure::UserNotFound, None))?;
    let guid: [u8; 16] = bytes.try_into().map_err(|_| (Failure::UserNotFound, None))?;
    let attrs = vec!["userAccountControl"];
    l.with_timeout(LDAP_OP_LIMIT);
    let res = match cfg.source_anchor {
        SourceAnchor::ObjectGuid => {
            let base = format!("<GUID={}>", uuid::Uuid::from_bytes_le(guid));
            l.search(&base, Scope::Base, "(objectClass=user)", attrs).await
        }
        SourceAnchor::ConsistencyGuid => {
            let value: String = guid.iter().map(|b| format!("\\{b:02x}")).collect();
            let filter = format!("(&(objectClass=user)(mS-DS-ConsistencyGuid={value}))");
            l.search(&cfg.base_dn, Scope::Subtree, &filter, attrs).await
        }
    };
    let ldap3::SearchResult(entries, r) =
        res.map_err(|e| (Failure::DirectoryUnavailable, Some(format!("{} ({e})", events::SERVER_DOWN))))?;
    if r.rc == 32 || entries.is_empty() {
        return Err((Failure::UserNotFound, Some(events::NOT_FOUND.into())));
    }
    if entries.len() > 1 {
        return Err((Failure::MultiMatch, Some(events::DUPLICATE_ANCHOR.into())));
    }
    let e = SearchEntry::construct(entries.into_iter().next().expect("one"));
    let uac = e.attrs.get("userAccountControl").and_then(|v| v.first()).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((e.dn, uac))
}

const UF_ACCOUNTDISABLE: i64 = 0x2;
const UF_DONT_EXPIRE_PASSWD: i64 = 0x10000;

fn unicode_pwd(p: &str) -> Vec<u8> {
    format!("\"{p}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Why a write did not happen: AD (or the way to it) refused it, or the commit point
/// turned it away before anything was sent.
enum Stop {
    Refusal(Refusal),
    Refused(Refused),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refusal(r)
    }
}

async fn write(
    inner: &Inner,
    link: &CancellationToken,
    anchor: &str,
    op: &Operation,
    tracking: &str,
    deadline_ms: u64,
) -> Result<(), Stop> {
    let wrong_key = inner.wrong_key.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let open = |s: &relay::Sealed| {
        match &wrong_key {
            // the data key was wrapped for the registered public key: RSA-OAEP fails here
            Some(k) => s.open(k),
            None => s.open_cached(&inner.reg.key, &inner.keys),
        }
        .map_err(|_| (Failure::Decryption, Some(events::KEY_MISMATCH.to_string())))
    };
    let trace = |from, to, text: String| inner.log.trace(tracking, from, to, text);
    trace("engine", "AD DS", format!("search for sourceAnchor {anchor} (LDAPS, as the connector)"));
    let (mut l, dn, uac) = match connect_and_find(inner, anchor).await {
        Ok(found) => found,
        Err(e) => {
            trace("AD DS", "engine", e.1.clone().unwrap_or_else(|| "not found".into()));
            return Err(e.into());
        }
    };
    trace("AD DS", "engine", format!("{dn} (userAccountControl {uac})"));
    // Connect binds the object by its ADSI path before it writes: a DN that path cannot
    // carry fails there, whatever the account's state
    if events::adsi_reserved(&dn) {
        return Err((Failure::Unknown, Some(format!("{} ({dn})", events::BAD_PATHNAME))).into());
    }
    if uac & UF_ACCOUNTDISABLE != 0 {
        return Err((Failure::AccountDisabled, None).into());
    }
    let pwd = b"unicodePwd".to_vec();
    let (mods, hints) = match op {
        Operation::Reset { password, unlock, force_change, .. } => {
            let mut mods = vec![Mod::Replace(pwd, HashSet::from([unicode_pwd(&open(password)?)]))];
            if *unlock {
                mods.push(Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()])));
            }
            // forced-change writeback: not for accounts whose password never expires
            if *force_change && uac & UF_DONT_EXPIRE_PASSWD == 0 {
                mods.push(Mod::Replace(b"pwdLastSet".to_vec(), HashSet::from([b"0".to_vec()])));
            }
            (mods, true)
        }
        Operation::Change { old, new } => (
            vec![
                Mod::Delete(pwd.clone(), HashSet::from([unicode_pwd(&open(old)?)])),
                Mod::Add(pwd, HashSet::from([unicode_pwd(&open(new)?)])),
            ],
            false,
        ),
        Operation::Unlock => (vec![Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()]))], false),
    };
    let written: Vec<String> = mods
        .iter()
        .map(|m| {
            let (op, attr, vals) = match m {
                Mod::Replace(a, v) => ("replace", a, Some(v)),
                Mod::Add(a, v) => ("add", a, Some(v)),
                Mod::Delete(a, v) => ("delete", a, Some(v)),
                Mod::Increment(a, _) => ("increment", a, None),
            };
            let attr = String::from_utf8_lossy(attr).to_string();
            let value = match vals {
                _ if attr == "unicodePwd" => "***".to_string(),
                Some(v) => v.iter().map(|x| String::from_utf8_lossy(x).to_string()).collect::<Vec<_>>().join(";"),
                None => String::new(),
            };
            format!("{op} {attr}={value}")
        })
        .collect();
    let with = if hints { " [policy hints 1.2.840.113556.1.4.2239]" } else { "" };
    trace("engine", "AD DS", format!("modify {dn}: {}{with}", written.join(", ")));
    // the commit point, immediately before the write (see Inner::commit); the write itself
    // gets the grace the tenant still waits after the deadline
    inner.commit(link, deadline_ms).map_err(Stop::Refused)?;
    let grace = Duration::from_millis((deadline_ms + relay::WRITE_GRACE_MS).saturating_sub(now_ms()).max(1));
    l.with_timeout(grace);
    let r = if hints {
        // LDAP_SERVER_POLICY_HINTS_OID: AD applies the whole policy (history too) to the reset
        let ctrl = ldap3::controls::RawControl {
            ctype: "1.2.840.113556.1.4.2239".into(),
            crit: true,
            val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
        };
        l.with_controls(vec![ctrl]).modify(&dn, mods).await
    } else {
        l.modify(&dn, mods).await
    };
    let r = r.map_err(|e| (Failure::DirectoryUnavailable, Some(format!("{} (the connection was lost: {e})", events::SERVER_DOWN))))?;
    trace("AD DS", "engine", if r.rc == 0 { "success (0)".to_string() } else { format!("{} {}", r.rc, r.text.trim()) });
    if r.rc == 0 {
        return Ok(());
    }
    let (failure, detail) = events::classify(r.rc, &r.text);
    // Connect's text first; the lab's note says which rule AD applied
    let detail = match events::plain_reason(r.rc, &r.text) {
        Some(why) => format!("{detail} [lab note: {why}]"),
        None => detail.to_string(),
    };
    Err((failure, Some(detail)).into())
}

/// The longest relay delay the fault switch takes (an hour: longer than any deadline).
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// The engine's status and fault switches over HTTP (the lab serves them on its HTTPS
/// listener under `/lab/engine`): `GET /lab/engine` (status), `GET /lab/engine/events`,
/// `POST /lab/engine/control` `{"action": "stop" | "start" | "run-due" | "delay", "ms": N}`,
/// or `{"action": "offboard", "userPrincipalName", "password"}` (a Global Administrator's).
/// The lab's front door lets only the lab's administrator reach them (tenant's `guard`);
/// events carry no passwords.
/// `slot` holds the engine once it has onboarded (404 until then, or in a lab without one).
pub fn control_router(slot: Arc<std::sync::OnceLock<Engine>>) -> axum::Router {
    use axum::Json;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    fn none() -> Response {
        let msg = json!({ "error": { "code": "NotFound", "message": "This lab runs no writeback engine." } });
        (StatusCode::NOT_FOUND, Json(msg)).into_response()
    }
    let (s1, s2, s3, s4) = (slot.clone(), slot.clone(), slot.clone(), slot);
    let status = move || {
        let e = s1.get().cloned();
        async move {
            match e {
                Some(e) => Json(json!({
                    "engineId": e.id(),
                    "running": e.running(),
                    "connected": e.connected(),
                    // requests taken and not yet answered (a scenario's "no such event" waits for 0)
                    "inFlight": e.in_flight(),
                    "syncScope": e.inner.cfg.sync_scope,
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
                    let msg = json!({ "error": { "code": "BadRequest", "message": format!("Expected {{\"action\": \"stop\" | \"start\" | \"run-due\" | \"onboard\" | \"offboard\" | \"delay\" | \"export-delay\", \"ms\": 0..{MAX_DELAY_MS}}} or {{\"action\": \"fault\", \"unsealedLdap\": bool, \"keyMismatch\": bool}}.") } });
                    return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
                }
            }
            Json(json!({ "running": e.running(), "connected": e.connected() })).into_response()
        }
    };
    axum::Router::new()
        .route("/lab/engine", get(status))
        .route("/lab/engine/events", get(events))
        .route("/lab/engine/trace", get(trace))
        .route("/lab/engine/control", post(control))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each condition of the commit point refuses alone; a stopped service or a closed link is
    /// "cancelled" even past the deadline (no one hears the answer either way).
    #[test]
    fn the_commit_point_admits_a_write_only_running_linked_and_in_time() {
        assert_eq!(admit(true, true, 999, 1_000), Ok(()));
        assert_eq!(admit(true, true, 1_000, 1_000), Err(Refused::Expired), "at the deadline");
        assert_eq!(admit(true, true, 5_000, 1_000), Err(Refused::Expired));
        assert_eq!(admit(false, true, 0, 1_000), Err(Refused::Cancelled), "the service stopped");
        assert_eq!(admit(true, false, 0, 1_000), Err(Refused::Cancelled), "the link closed");
        assert_eq!(admit(false, false, 5_000, 1_000), Err(Refused::Cancelled));
    }

    #[test]
    fn the_trace_and_the_event_log_keep_their_newest_lines_in_order() {
        let log = EventLog::new(clock::Clock::frozen(clock::Clock::lab_epoch()));
        for i in 0..TRACE_KEPT + 5 {
            log.trace("t", "engine", "relay", format!("line {i}"));
        }
        let kept = log.trace_since(0);
        assert_eq!(kept.len(), TRACE_KEPT);
        assert_eq!((kept[0].seq, kept[0].text.as_str()), (6, "line 5"));
        assert!(kept.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert_eq!(log.trace_since(kept[TRACE_KEPT - 3].seq).len(), 2);

        for i in 0..EVENTS_KEPT + 3 {
            log.log(31002, format!("event {i}"), None);
        }
        let events = log.all();
        assert_eq!(events.len(), EVENTS_KEPT);
        assert_eq!(events[0].message, "event 3");
        assert_eq!(events[EVENTS_KEPT - 1].message, format!("event {}", EVENTS_KEPT + 2));
    }
}
