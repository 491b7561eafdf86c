//! The writeback engine: the role Azure AD Connect's password writeback plays. It onboards
//! with the tenant once (a Global Administrator's token, a fresh RSA key, a relay
//! credential; the sync side's writeback flag), keeps an outbound WebSocket to the tenant's
//! relay (heartbeats, reconnect with backoff), and carries each password operation to AD over
//! LDAPS as the connector account of the forest the user came from (one connector per
//! directory: [`connectors`]): the object found by its sourceAnchor, the password opened only
//! in memory, AD's answer sent back and logged as Connect's events.
//!
//! It reaches the tenant only over HTTPS/WSS and the AD DS only with the `ldap3` crate, so
//! it works against any AD-compatible directory.

mod ad;
pub mod cloudsync;
pub mod connectors;
mod control;
pub mod dcs;
pub mod events;
mod link;
mod onboarding;
pub mod pta;
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

pub use control::{control_router, control_router_at};
// the engine's parts, each in a file of its own, seen here as one
use ad::*;
pub use events::Event;
use link::*;
use onboarding::*;
pub use onboarding::{install, onboard};
pub use pta::pta_router;
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
    /// The OUs directory sync covers (DNs); empty: the whole domain. Cloud Sync takes at
    /// most [`CLOUD_SYNC_MAX_SCOPES`].
    pub sync_scope: Vec<String>,
    pub clock: clock::Clock,
    /// Connect Sync's engine, or Cloud Sync's provisioning agent (which binds as its gMSA,
    /// finds users by their DN, syncs every two minutes and keeps a trace log).
    pub kind: relay::AgentKind,
    /// Every DC of the domain, in the order the domain lists them (empty: `ldaps` alone).
    pub domain_controllers: Vec<dcs::DcEndpoint>,
    /// The other directories Connect's wizard connected, each with its own connector
    /// ([`connectors`]): other forests' domains, child domains. Connect Sync only.
    pub directories: Vec<connectors::DirectoryConfig>,
}

/// Cloud Sync's scoping limit: "up to 59 separate OUs or security groups" a configuration
/// (Cloud Sync prerequisites).
pub const CLOUD_SYNC_MAX_SCOPES: usize = 59;

/// The name Cloud Sync's installer gives its group managed service account.
pub const CLOUD_SYNC_GMSA: &str = "provAgentgMSA$";

/// A configuration's scope as the agent takes it: Cloud Sync's at most
/// [`CLOUD_SYNC_MAX_SCOPES`] OUs (Connect sets no such limit).
pub fn check_scope(kind: relay::AgentKind, scope: &[String]) -> Result<(), Error> {
    if kind == relay::AgentKind::CloudSync && scope.len() > CLOUD_SYNC_MAX_SCOPES {
        return Err(Error(format!(
            "a Cloud Sync configuration scopes at most {CLOUD_SYNC_MAX_SCOPES} OUs or groups ({} given)",
            scope.len()
        )));
    }
    Ok(())
}

impl Config {
    /// A configuration that reaches no directory: an agent of `kind` on `clock`, its tenant
    /// and DC left empty for the caller to fill (the authentication agents' registration
    /// needs only the tenant).
    pub fn minimal(clock: clock::Clock, kind: relay::AgentKind) -> Config {
        Config {
            tenant_https: String::new(),
            tenant_id: String::new(),
            client_id: String::new(),
            ca_pem: vec![],
            ldaps: String::new(),
            ldap: None,
            connector_dn: String::new(),
            connector_password: String::new(),
            base_dn: String::new(),
            source_anchor: SourceAnchor::ObjectGuid,
            sync_scope: vec![],
            clock,
            kind,
            domain_controllers: vec![],
            directories: vec![],
        }
    }

    /// The first directory's connector, as configured (the domain `base_dn` names).
    pub(crate) fn first_directory(&self) -> connectors::DirectoryConfig {
        connectors::DirectoryConfig {
            name: sync::domain_of(&self.base_dn),
            base_dn: self.base_dn.clone(),
            domain_controllers: self.dcs(),
            connector_dn: self.connector_dn.clone(),
            connector_password: self.connector_password.clone(),
            sync_scope: self.sync_scope.clone(),
        }
    }

    /// The domain's DCs: as configured, or the one `ldaps` names.
    pub fn dcs(&self) -> Vec<dcs::DcEndpoint> {
        if !self.domain_controllers.is_empty() {
            return self.domain_controllers.clone();
        }
        vec![dcs::DcEndpoint { name: "DC1".into(), ldaps: self.ldaps.clone(), ldap: self.ldap.clone() }]
    }

    /// Between sync cycles: Connect's default 30 minutes; Cloud Sync's provisioning runs
    /// "every 2 mins" (users, groups and password hashes alike: Cloud Sync FAQ).
    pub fn cycle_interval(&self) -> Duration {
        match self.kind {
            relay::AgentKind::ConnectSync => sync::CYCLE_INTERVAL,
            relay::AgentKind::CloudSync => sync::HASH_INTERVAL,
        }
    }
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

/// One connector as Synchronization Service Manager lists it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryStatus {
    pub name: String,
    pub base_dn: String,
    pub connector_account: String,
    pub domain_controllers: Vec<String>,
    pub current_dc: Option<String>,
    /// Password writeback enabled on it (off for a directory added after onboarding).
    pub password_writeback: bool,
    /// Its last run's status (`success`, `no-start-credentials`, `stopped-server-down`).
    pub last_run: Option<&'static str>,
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

/// One line of Cloud Sync's agent trace log (`C:\ProgramData\Microsoft\Azure AD Connect
/// Provisioning Agent\Trace`): Microsoft publishes no event IDs for Cloud Sync's writeback,
/// so its agent writes these instead of Connect's events.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTraceLine {
    pub time: String,
    /// Information, Warning or Error.
    pub level: &'static str,
    /// `AgentService`, `PasswordWriteback` or `Provisioning`.
    pub component: &'static str,
    pub message: String,
    pub tracking_id: Option<String>,
    /// The Connect event ID logged for the same happening (not in the agent's file: the lab
    /// keeps it so one scenario's `expect.event` can check either agent).
    pub connect_event: u32,
}

/// The engine's event log (and its wire trace), shared by its tasks. Cloud Sync's agent
/// keeps a trace log instead of events ([`AgentTraceLine`]). Each keeps its newest entries
/// within a budget of bytes, as Windows' event logs have a maximum size and overwrite their
/// oldest events: a message carries DNs and texts that come from AD, of any length.
#[derive(Clone)]
pub struct EventLog {
    events: Arc<Mutex<Ring<Event>>>,
    trace: Arc<Mutex<Ring<TraceLine>>>,
    agent_trace: Arc<Mutex<Ring<AgentTraceLine>>>,
    kind: relay::AgentKind,
    clock: clock::Clock,
}

/// What the event log and Cloud Sync's trace log each hold at most (by estimate: an entry's
/// texts and a fixed overhead), and the wire trace.
pub const EVENTS_BUDGET: usize = 4 << 20;
const TRACE_BUDGET: usize = 1 << 20;

/// An entry's cost beside its texts: the struct, the deque's slot, the allocations' headers.
const ENTRY_OVERHEAD: usize = 128;

/// Entries oldest first, the oldest dropped while the newest would not fit the budget.
pub(crate) struct Ring<T> {
    items: std::collections::VecDeque<(usize, T)>,
    bytes: usize,
    budget: usize,
}

impl<T: Clone> Ring<T> {
    pub(crate) fn new(budget: usize) -> Ring<T> {
        Ring { items: Default::default(), bytes: 0, budget }
    }

    pub(crate) fn push(&mut self, size: usize, item: T) {
        let size = size + ENTRY_OVERHEAD;
        while self.bytes + size > self.budget {
            let Some((s, _)) = self.items.pop_front() else { break };
            self.bytes -= s;
        }
        // one entry larger than the whole budget is not kept
        if size <= self.budget {
            self.bytes += size;
            self.items.push_back((size, item));
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(_, t)| t)
    }

    pub(crate) fn last(&self) -> Option<&T> {
        self.items.back().map(|(_, t)| t)
    }
}

impl EventLog {
    pub fn new(clock: clock::Clock) -> EventLog {
        EventLog::for_agent(clock, relay::AgentKind::ConnectSync)
    }

    /// The log of an agent of `kind`: Connect's events, or Cloud Sync's trace log.
    pub fn for_agent(clock: clock::Clock, kind: relay::AgentKind) -> EventLog {
        EventLog {
            events: Arc::new(Mutex::new(Ring::new(EVENTS_BUDGET))),
            trace: Arc::new(Mutex::new(Ring::new(TRACE_BUDGET))),
            agent_trace: Arc::new(Mutex::new(Ring::new(EVENTS_BUDGET))),
            kind,
            clock,
        }
    }

    /// Cloud Sync's agent trace log, oldest first (empty for Connect).
    pub fn agent_trace(&self) -> Vec<AgentTraceLine> {
        self.agent_trace.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }

    pub(crate) fn trace(&self, tracking_id: &str, from: &'static str, to: &'static str, text: impl Into<String>) {
        let mut t = self.trace.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let seq = t.last().map(|l| l.seq + 1).unwrap_or(1);
        let text = text.into();
        t.push(tracking_id.len() + text.len(), TraceLine { seq, tracking_id: tracking_id.to_string(), from, to, text });
    }

    /// The trace lines after `seq` (0: all kept).
    pub fn trace_since(&self, seq: u64) -> Vec<TraceLine> {
        self.trace.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().filter(|l| l.seq > seq).cloned().collect()
    }

    pub fn log(&self, id: u32, message: impl Into<String>, tracking: Option<&str>) {
        let source = match id {
            6329 | events::RUN_FAILED => "ADSync",
            events::PHS_FAILED | 656 | 657 => "Directory Synchronization",
            events::SYNC_STARTED..=events::SYNC_FAILED => "hybrid-lab",
            _ => "PasswordResetService",
        };
        let time = self.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap_or_default();
        if self.kind == relay::AgentKind::CloudSync {
            let line = events::cloud_sync_line(id, message.into(), tracking, time);
            tracing::debug!(component = line.component, message = %line.message, "provisioning agent trace");
            let size = line.time.len() + line.message.len() + line.tracking_id.as_ref().map_or(0, String::len);
            self.agent_trace.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(size, line);
            return;
        }
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
        let size = e.time.len() + e.message.len() + e.tracking_id.as_ref().map_or(0, String::len);
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(size, e);
    }

    pub fn all(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }
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
    /// The AD connectors, the first directory's first: each its LDAP connection, DCs and
    /// connector space ([`connectors`]).
    connectors: std::sync::RwLock<Vec<Arc<connectors::Connector>>>,
    /// The metaverse: each synced anchor's contributing connector (by name).
    owners: Mutex<std::collections::HashMap<String, String>>,
    /// Anchors whose connector was removed: the next cycle exports what becomes of them.
    orphans: Mutex<Vec<String>>,
    /// The tenant's data keys, unwrapped once each.
    keys: relay::KeyCache,
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
    /// The connectors as they stand, the first directory's first.
    pub(crate) fn connectors(&self) -> Vec<Arc<connectors::Connector>> {
        self.connectors.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The first directory's connector (the one the lab installed Connect against).
    pub(crate) fn primary(&self) -> Arc<connectors::Connector> {
        self.connectors.read().unwrap_or_else(std::sync::PoisonError::into_inner)[0].clone()
    }

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

/// Waits (real time, at most `limit`) until `holds`, looking again each time `changed` is
/// told: no polling. Whether it holds in the end.
pub(crate) async fn wait_until(changed: &Notify, holds: impl Fn() -> bool, limit: Duration) -> bool {
    let until = tokio::time::Instant::now() + limit;
    loop {
        let notified = changed.notified();
        tokio::pin!(notified);
        // registered before the look, so a change in between is not missed
        notified.as_mut().enable();
        if holds() {
            return true;
        }
        if tokio::time::timeout_at(until, notified).await.is_err() {
            return holds();
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
        check_scope(cfg.kind, &cfg.sync_scope)?;
        let tls = tls(&cfg.ca_pem)?;
        // (a tenant that accepts an export and never answers must not hold a cycle for ever)
        // (the relay's WebSocket and the exports share one configuration: one CA parse)
        let http = https_client(&tls, Some(Duration::from_secs(30)))?;
        let (shutdown, _) = watch::channel(false);
        // onboarding enabled writeback on every connector there is
        let connectors = std::iter::once(cfg.first_directory())
            .chain(cfg.directories.iter().cloned())
            .map(|d| Arc::new(connectors::Connector::new(d, true)))
            .collect();
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
            connectors: std::sync::RwLock::new(connectors),
            owners: Mutex::default(),
            orphans: Mutex::default(),
            keys: relay::KeyCache::default(),
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

    /// The first connector's domain controller connection settings.
    pub fn dc_settings(&self) -> dcs::DcSettings {
        self.inner.primary().dc_settings()
    }

    /// Changes them, as Synchronization Service Manager does, and restarts the connector's
    /// connection ("restart the ADSync service"): the next operation picks its DC anew.
    pub async fn set_dc_settings(&self, s: dcs::DcSettings) -> Result<(), Error> {
        let c = self.inner.primary();
        s.check(&c.dcs).map_err(Error)?;
        *c.dc_settings.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = s;
        c.restart().await;
        Ok(())
    }

    /// The DC the first connector's connection talks to now (None before its first operation).
    pub fn current_dc(&self) -> Option<String> {
        self.inner.primary().current_dc()
    }

    /// The first domain's DCs as the connector knows them.
    pub fn domain_controllers(&self) -> Vec<dcs::DcEndpoint> {
        self.inner.primary().dcs.clone()
    }

    /// The connectors, as Synchronization Service Manager's Connectors tab lists them.
    pub fn directories(&self) -> Vec<DirectoryStatus> {
        self.inner
            .connectors()
            .iter()
            .map(|c| DirectoryStatus {
                name: c.name.clone(),
                base_dn: c.base_dn.clone(),
                connector_account: c.account_dn.clone(),
                domain_controllers: c.dcs.iter().map(|d| d.name.clone()).collect(),
                current_dc: c.current_dc(),
                password_writeback: c.writeback(),
                last_run: c.last_run(),
            })
            .collect()
    }

    /// The directories this server reaches and has no connector for (the wizard's Add
    /// Directory offers them).
    pub fn unconnected_directories(&self) -> Vec<String> {
        let on = self.inner.connectors();
        self.inner
            .cfg
            .directories
            .iter()
            .filter(|d| !on.iter().any(|c| c.name.eq_ignore_ascii_case(&d.name)))
            .map(|d| d.name.clone())
            .collect()
    }

    /// The wizard's "Connect your directories" › Add Directory: a new connector for one of
    /// the directories the server reaches ([`Config::directories`]), with its connector
    /// account. Password writeback is not enabled on it until writeback is turned off and on
    /// again (0x8023061f). The next cycle imports it in full.
    pub fn add_directory(&self, name: &str) -> Result<(), Error> {
        if self.inner.cfg.kind != relay::AgentKind::ConnectSync {
            return Err(Error("directories are added in Connect's wizard; Cloud Sync's agent serves its own domain".into()));
        }
        let known = &self.inner.cfg.directories;
        let Some(d) = known.iter().find(|d| d.name.eq_ignore_ascii_case(name)).cloned() else {
            let names: Vec<&str> = known.iter().map(|d| d.name.as_str()).collect();
            return Err(Error(format!("{name} is not a directory this server reaches (it reaches: {})", names.join(", "))));
        };
        let mut all = self.inner.connectors.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if all.iter().any(|c| c.name.eq_ignore_ascii_case(&d.name)) {
            return Err(Error(format!("{} is already connected", d.name)));
        }
        all.push(Arc::new(connectors::Connector::new(d, false)));
        Ok(())
    }

    /// The wizard's "Connect your directories" › Remove: the connector and its connector space
    /// go; the next cycle deletes from the cloud the users no other connector holds.
    pub fn remove_directory(&self, name: &str) -> Result<(), Error> {
        let mut all = self.inner.connectors.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(i) = all.iter().position(|c| c.name.eq_ignore_ascii_case(name)) else {
            return Err(Error(format!("{name} is not a connected directory")));
        };
        if i == 0 {
            return Err(Error(format!("{name} is the directory Connect was installed against; it stays")));
        }
        let gone = all.remove(i);
        drop(all);
        let owners = self.inner.owners.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let orphaned = owners.iter().filter(|(_, c)| **c == gone.name).map(|(a, _)| a.clone());
        self.inner.orphans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(orphaned);
        Ok(())
    }

    /// Synchronization Service Manager › Connectors › Properties › "Connect to Active
    /// Directory Forest": the connector account's new password (after it was changed in AD:
    /// event 6000 until then), and the service restarted.
    pub async fn set_connector_password(&self, name: &str, password: &str) -> Result<(), Error> {
        let c = self.inner.connectors().into_iter().find(|c| c.name.eq_ignore_ascii_case(name));
        let Some(c) = c else { return Err(Error(format!("{name} is not a connected directory"))) };
        *c.password.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = password.to_string();
        c.restart().await;
        Ok(())
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
        wait_until(&self.inner.link_changed, || self.connected() == up, limit).await
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
        if self.inner.cfg.kind == relay::AgentKind::CloudSync {
            return Err(Error("Cloud Sync's writeback is turned on in the admin center (Password reset > On-premises integration) or with Set-AADCloudSyncPasswordWritebackConfiguration, not in Connect's wizard".into()));
        }
        let (cfg, log) = (&self.inner.cfg, &self.inner.log);
        log.log(31004, "Onboarding to the password reset service started.", None);
        let (http, token) = signed_in(cfg, admin_upn, admin_password, log).await?;
        log.log(31018, "Created the password encryption key (RSA-2048).", None);
        writeback_on(&http, cfg, &token, log).await?;
        // every connector there now is gets password management: a directory added since
        // the last onboarding is included from here on
        for c in self.inner.connectors() {
            c.writeback.store(true, Ordering::SeqCst);
        }
        self.resume();
        Ok(())
    }

    /// The wizard's Optional features with "Password writeback" cleared, Connect staying
    /// installed for sync (31012 → 31013): the sync side's writeback flag off, password
    /// management off on every connector, the writeback service stopped (31016). Turning it
    /// on again is [`Engine::enable_writeback`] — Microsoft's fix for 0x8023061f and 32004.
    pub async fn disable_writeback(&self, admin_upn: &str, admin_password: &str) -> Result<(), Error> {
        if self.inner.cfg.kind == relay::AgentKind::CloudSync {
            return Err(Error(
                "Cloud Sync's writeback is turned off in the admin center or with Set-AADCloudSyncPasswordWritebackConfiguration".into(),
            ));
        }
        let (cfg, log) = (&self.inner.cfg, &self.inner.log);
        log.log(31012, "Offboarding from the password reset service started.", None);
        let done = match admin_session(cfg, admin_upn, admin_password).await {
            Ok((http, token)) => set_sync_writeback(&http, cfg, &token, false).await,
            Err(SignIn::Unreachable(e)) => Err(Error(e)),
            Err(SignIn::NoToken(_)) => Err(Error(format!("no token for {admin_upn}"))),
        };
        if let Err(e) = done {
            log.log(31014, format!("Offboarding failed: {e}"), None);
            return Err(e);
        }
        for c in self.inner.connectors() {
            c.writeback.store(false, Ordering::SeqCst);
        }
        log.log(31013, "Offboarding succeeded: password writeback is disabled.", None);
        self.stop();
        Ok(())
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
        if cfg.kind == relay::AgentKind::CloudSync {
            return Ok(());
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
            for c in self.inner.connectors() {
                c.restart().await;
            }
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
        let first = self.inner.primary();
        let mut st = first.sync.lock().await;
        st.next_cycle = Some(now + self.inner.cfg.cycle_interval());
        st.next_hash_sync = Some(now + sync::HASH_INTERVAL);
        r
    }

    /// Runs what the schedule says is due by the lab clock: a delta cycle every 30 minutes
    /// (Cloud Sync's: every 2), password hash sync every 2 minutes (from the engine's start). A frozen lab clock
    /// moves only when advanced; whoever advances it calls this.
    pub async fn run_due(&self) -> Option<relay::SyncReport> {
        if !self.running() {
            return None;
        }
        let now = self.inner.cfg.clock.now();
        let (cycle, hashes) = {
            let first = self.inner.primary();
            let mut st = first.sync.lock().await;
            let next_cycle = *st.next_cycle.get_or_insert(now + self.inner.cfg.cycle_interval());
            let next_hash = *st.next_hash_sync.get_or_insert(now + sync::HASH_INTERVAL);
            let (cycle, hashes) = (now >= next_cycle, now >= next_hash);
            if cycle {
                st.next_cycle = Some(now + self.inner.cfg.cycle_interval());
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
        let (session, dc) = (read.session.clone(), read.dc.clone());
        sync::adopt(&self.inner, read).await;
        let first = self.inner.primary();
        let mut slot = first.ldap.lock().await;
        if slot.is_none() {
            *slot = Some(session);
            first.set_current_dc(Some(dc));
        }
        drop(slot);
        let now = self.inner.cfg.clock.now();
        let mut st = first.sync.lock().await;
        st.next_cycle = Some(now + self.inner.cfg.cycle_interval());
        st.next_hash_sync = Some(now + sync::HASH_INTERVAL);
    }

    /// The status a Connect server would show: state, link, last events.
    pub fn status(&self) -> Value {
        json!({ "engineId": self.id(), "running": self.running(), "connected": self.connected(), "events": self.events() })
    }

    /// The configuration's scope now (OUs and groups).
    pub async fn scope(&self) -> Vec<String> {
        self.inner.primary().sync.lock().await.scope.clone().unwrap_or_else(|| self.inner.cfg.sync_scope.clone())
    }

    /// Edits the configuration's scope (Cloud Sync's "Scoping filters": OUs or security
    /// groups, at most 59): the next cycle reads the directory whole, as a restart does.
    pub async fn set_scope(&self, scope: Vec<String>) -> Result<(), Error> {
        check_scope(self.inner.cfg.kind, &scope)?;
        let first = self.inner.primary();
        let mut st = first.sync.lock().await;
        st.scope = Some(scope);
        st.watermark = None;
        Ok(())
    }

    /// Connect Sync's engine or Cloud Sync's provisioning agent.
    pub fn kind(&self) -> relay::AgentKind {
        self.inner.cfg.kind
    }

    /// Cloud Sync's agent trace log (empty for Connect, whose log is [`Engine::events`]).
    pub fn agent_trace(&self) -> Vec<AgentTraceLine> {
        self.inner.log.agent_trace()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
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
    fn cloud_sync_scopes_at_most_59_ous_and_cycles_every_two_minutes() {
        let ous = |n: usize| (0..n).map(|i| format!("OU=O{i},DC=testlab,DC=example")).collect::<Vec<_>>();
        assert!(check_scope(relay::AgentKind::CloudSync, &ous(59)).is_ok());
        let e = check_scope(relay::AgentKind::CloudSync, &ous(60)).unwrap_err();
        assert!(e.0.contains("at most 59") && e.0.contains("60 given"), "{e}");
        assert!(check_scope(relay::AgentKind::ConnectSync, &ous(500)).is_ok());
        let cfg = |kind| Config::minimal(clock::Clock::frozen(clock::Clock::lab_epoch()), kind);
        assert_eq!(cfg(relay::AgentKind::CloudSync).cycle_interval(), Duration::from_secs(120));
        assert_eq!(cfg(relay::AgentKind::ConnectSync).cycle_interval(), Duration::from_secs(1800));
    }

    #[test]
    fn a_ring_keeps_its_newest_entries_within_its_budget_of_bytes() {
        let mut r = Ring::new(1000);
        for i in 0..10 {
            r.push(72, i); // 200 bytes each with the overhead
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [5, 6, 7, 8, 9]);
        assert_eq!(r.bytes, 1000, "exactly full");
        r.push(472, 10); // 600 bytes: three older ones make room
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), [8, 9, 10]);
        assert_eq!(r.bytes, 1000);
        r.push(2000, 11); // larger than the budget: not kept, and the ring emptied for it
        assert_eq!(r.bytes, 0);
        assert!(r.last().is_none());
    }

    #[test]
    fn the_trace_and_the_event_log_keep_their_newest_lines_in_order() {
        let log = EventLog::new(clock::Clock::frozen(clock::Clock::lab_epoch()));
        // each line costs its texts and the overhead: 1 + 1,000 + 128 bytes
        let per_line = 1 + 1000 + ENTRY_OVERHEAD;
        let fit = TRACE_BUDGET / per_line;
        for i in 0..fit + 5 {
            log.trace("t", "engine", "relay", format!("{i:>1000}"));
        }
        let kept = log.trace_since(0);
        assert_eq!(kept.len(), fit);
        assert_eq!((kept[0].seq, kept[0].text.trim()), (6, "5"));
        assert!(kept.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert_eq!(log.trace_since(kept[fit - 3].seq).len(), 2);

        // a message of 10,000 bytes (a long DN from AD, say): the log holds what fits in its
        // budget, newest last, whatever the count
        let time_len = log.clock.now().format(&clock::format_description::well_known::Rfc3339).unwrap().len();
        let per_event = time_len + 10_000 + ENTRY_OVERHEAD;
        let fit = EVENTS_BUDGET / per_event;
        for i in 0..fit + 3 {
            log.log(31002, format!("{i:>10000}"), None);
        }
        let events = log.all();
        assert_eq!(events.len(), fit);
        assert_eq!(events[0].message.trim(), "3");
        assert_eq!(events[fit - 1].message.trim(), format!("{}", fit + 2));
    }
}
