//! Assembles a lab: builds each part on one shared [`Clock`], starts its listeners, and
//! hands back the endpoints and well-known credentials ([`LabInfo`]). Both the `lab`
//! command and the tests start labs through [`Lab::start`]; the parts are reached only
//! through their protocols afterwards.
//!
//! A lab is the AD DS (LDAP and LDAPS; one DC or several, and other domains and forests
//! beside the testlab: [`forests`]), the tenant (HTTPS and HTTP: OIDC, tokens, a Graph
//! subset) and, unless turned off, the writeback and sync engine, onboarded with the tenant.
//! The AD DS may be an external directory instead (a Samba AD DC): the testlab is seeded
//! into it over LDAP and the engine works against it ([`external`]).

mod control;
pub mod external;
pub mod forests;
pub mod testlab;
pub mod userkeys;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ad_ds::{Directory, DomainController, Transport};
use anyhow::{Context, Result};
use clock::Clock;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How synced users sign in (password hash sync or pass-through authentication).
pub use tenant::signins::SignInMethod;
pub use testlab::SeededUser;

/// The default ports (unprivileged, so `lab up` needs no root).
pub const DEFAULT_LDAP: &str = "127.0.0.1:1389";
pub const DEFAULT_LDAPS: &str = "127.0.0.1:1636";
pub const DEFAULT_HTTPS: &str = "127.0.0.1:8443";
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";

/// How long [`Lab::stop`] waits for the lab's tasks before it aborts them.
pub const STOP_LIMIT: std::time::Duration = std::time::Duration::from_millis(1_500);

/// How to start a lab.
#[derive(Clone, Debug)]
pub struct LabConfig {
    pub ldap: SocketAddr,
    pub ldaps: SocketAddr,
    /// The tenant's HTTPS listener (what MSAL and the Graph SDKs need) and plain HTTP one.
    pub https: SocketAddr,
    pub http: SocketAddr,
    /// Where the lab writes files clients need (the CA certificate).
    pub state_dir: PathBuf,
    pub clock: Clock,
    /// Seeds GUIDs and everything else random.
    pub seed: u64,
    /// LDIF text to seed the AD DS with instead of the built-in users (on top of the
    /// built-in domain objects), with the name to report errors against.
    pub adds_ldif: Option<(String, String)>,
    /// The operator's certificate and key (PEM) instead of a lab CA.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Start the writeback engine, onboarded (the Test Lab Guide's end state: writeback on
    /// in both places). Off, the tenant answers as Entra does with no engine connected.
    pub engine: bool,
    /// Connect was installed with the "Password writeback" optional feature (default). False:
    /// installed without it — directory and hash sync only, the sync side's writeback flag
    /// off — until its configuration wizard turns it on (the exercise mode's start).
    pub password_writeback: bool,
    /// Extra synced users for load and concurrency tests (Load0…: `testlab::users`).
    pub load_users: usize,
    /// The attribute that ties a synced user to its AD object. With mS-DS-ConsistencyGuid
    /// the synced users' AD objects carry it (a copy of objectGUID, as Connect writes it).
    pub source_anchor: writeback::SourceAnchor,
    /// The tenant starts as Connect's cycles would have left it (the built-in users in scope
    /// already synced). False: before Connect's first cycle, with cloud-only accounts only.
    pub presynced: bool,
    /// The OUs directory sync covers (DNs); None: `OU=Lab Users` in the built-in domain, the
    /// whole domain for a directory from LDIF.
    pub sync_scope: Option<Vec<String>>,
    /// Run the engine's sync schedule on its own (a ticker that looks at the lab clock every
    /// second). Off in tests and scenarios: whoever advances the clock runs what is due.
    pub sync_schedule: bool,
    /// An external directory as the AD DS instead of the built-in one (the testlab seeded
    /// into it; no directory sync, which needs the built-in directory's hash control).
    pub external_adds: Option<external::External>,
    /// What each listener holds on to (connections, handshake, header and idle times).
    pub limits: Limits,
    /// Further names the lab is served under (`lab up --hostname`), for machines other than
    /// this one: in its certificate, accepted as Host, and the first of them in the URLs it
    /// hands out (LabInfo). Its own parts keep talking to it over loopback.
    pub hostnames: Vec<String>,
    /// The TLS identity (CA and server certificate) of an earlier start to serve again: a
    /// reset lab keeps the CA its clients trust (`Lab::tls`). None: made at start.
    pub tls_identity: Option<ad_ds::tls::TlsIdentity>,
    /// The program running the lab restarts it on `POST /lab/reset` ([`Lab::reset_requested`]).
    pub resettable: bool,
    /// How synced users sign in: password hash sync (default) or pass-through authentication
    /// (Connect's agent installed beside the engine, the tenant's feature on; needs the engine).
    pub sign_in: tenant::signins::SignInMethod,
    /// Standalone authentication agents beside Connect's (`lab up --pta-agents N`), each its
    /// own key and queue link; with Connect's, at most 40.
    pub pta_agents: usize,
    /// Which sync agent(s) the lab runs (`lab up --agent`): Connect Sync (default), Cloud
    /// Sync's provisioning agent, or both side by side with the users split by OU.
    pub sync_agents: SyncAgents,
    /// Domain controllers of the domain (`lab up --dcs N`, 1–8): DC1 (the PDC emulator) and
    /// replicas of it, each with its own listeners and copy of the directory, replicating on
    /// the lab clock (ad_ds::topology).
    pub dcs: usize,
    /// Where the DCs after the first listen (LDAP, LDAPS): a reset listens there again; none
    /// given, any free ports on the first DC's address.
    pub dc_listeners: Vec<(SocketAddr, SocketAddr)>,
    /// Forests (`lab up --forests 2`, 1–2): the second is fabrikam.example ([`forests`]).
    pub forests: usize,
    /// testlab's forest has a child domain, child.testlab.example (`--child-domain`).
    pub child_domain: bool,
    /// Where the other domains' DCs listen, domain by domain (a reset listens there again).
    pub domain_listeners: Vec<Vec<(SocketAddr, SocketAddr)>>,
}

/// The sync agents a lab runs. With both, Connect covers `OU=Lab Users` and Cloud Sync
/// `OU=Cloud Sync Users` with User6 (a user is in one agent's scope, never both); Cloud Sync
/// alone takes Connect's place and scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncAgents {
    #[default]
    ConnectSync,
    CloudSync,
    Both,
}

impl SyncAgents {
    pub fn parse(s: &str) -> Option<SyncAgents> {
        match s.to_ascii_lowercase().as_str() {
            "connect-sync" | "connect" => Some(SyncAgents::ConnectSync),
            "cloud-sync" => Some(SyncAgents::CloudSync),
            "both" => Some(SyncAgents::Both),
            _ => None,
        }
    }

    /// Whether Cloud Sync's provisioning agent runs.
    pub fn cloud_sync(self) -> bool {
        self != SyncAgents::ConnectSync
    }

    /// Whether Connect Sync's engine runs.
    pub fn connect_sync(self) -> bool {
        self != SyncAgents::CloudSync
    }

    /// The agent whose scope holds `OU=Lab Users`.
    pub fn lab_users(self) -> relay::AgentKind {
        if self == SyncAgents::CloudSync { relay::AgentKind::CloudSync } else { relay::AgentKind::ConnectSync }
    }
}

/// The bounds of the lab's listeners (see docs/security.md); tests shrink them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub ldap: ad_ds::server::Limits,
    pub http: tenant::server::Limits,
}

impl LabConfig {
    /// Any free ports on 127.0.0.1, a frozen clock at the lab epoch: what tests want.
    pub fn ephemeral(state_dir: PathBuf) -> LabConfig {
        LabConfig {
            ldap: "127.0.0.1:0".parse().expect("literal"),
            ldaps: "127.0.0.1:0".parse().expect("literal"),
            https: "127.0.0.1:0".parse().expect("literal"),
            http: "127.0.0.1:0".parse().expect("literal"),
            state_dir,
            clock: Clock::frozen(Clock::lab_epoch()),
            seed: 1,
            adds_ldif: None,
            tls_files: None,
            engine: false,
            password_writeback: true,
            load_users: 0,
            source_anchor: writeback::SourceAnchor::ObjectGuid,
            presynced: true,
            sync_scope: None,
            sync_schedule: false,
            external_adds: None,
            limits: Limits::default(),
            hostnames: vec![],
            tls_identity: None,
            resettable: false,
            sign_in: Default::default(),
            pta_agents: 0,
            sync_agents: SyncAgents::ConnectSync,
            dcs: 1,
            dc_listeners: vec![],
            forests: 1,
            child_domain: false,
            domain_listeners: vec![],
        }
    }

    /// The domains beside the testlab this configuration asks for.
    pub fn other_domains(&self) -> Vec<forests::OtherDomain> {
        let mut v = vec![];
        if self.forests > 1 {
            v.push(forests::OtherDomain::Fabrikam);
        }
        if self.child_domain {
            v.push(forests::OtherDomain::Child);
        }
        v
    }
}

/// Everything a client needs to use a running lab; `lab up --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct LabInfo {
    /// The lab dashboard (the trainer's page) and the end-user SSPR entry page.
    pub dashboard: String,
    pub sspr: String,
    pub adds: AddsInfo,
    pub tenant: TenantInfo,
    pub users: Vec<SeededUser>,
    /// The writeback engine, when the lab runs one (Cloud Sync's agent when it is the only one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineInfo>,
    /// Cloud Sync's provisioning agent, when the lab runs one (its switches under
    /// `/lab/cloudsync`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_sync: Option<CloudSyncInfo>,
    /// The exercise the lab was started for (`lab up --exercise NAME`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exercise: Option<String>,
    /// How synced users sign in: `passwordHashSync` or `passThroughAuthentication`.
    pub sign_in: tenant::signins::SignInMethod,
    /// The authentication agents running (Connect's first), when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pta_agents: Vec<AgentInfo>,
}

/// An authentication agent of the lab.
#[derive(Clone, Debug, Serialize)]
pub struct AgentInfo {
    /// Its registration id in the tenant (the sign-in log's "PTA AgentId").
    pub id: String,
    pub machine_name: String,
}

impl LabInfo {
    /// The URLs under `name` (the same ports): what a machine other than this one uses.
    fn served_as(&mut self, name: &str, own_base: &str, public_base: &str) {
        for url in [&mut self.dashboard, &mut self.sspr, &mut self.tenant.https, &mut self.tenant.authority, &mut self.tenant.graph] {
            if let Some(rest) = url.strip_prefix(own_base) {
                *url = format!("{public_base}{rest}");
            }
        }
        for url in [&mut self.adds.ldap, &mut self.adds.ldaps] {
            if let Some((scheme, rest)) = url.split_once("://")
                && let Some((_, port)) = rest.rsplit_once(':')
            {
                *url = format!("{scheme}://{}:{port}", url_host(name));
            }
        }
    }
}

/// A host name or an IP address as `lab up --hostname` takes it: DNS labels of letters,
/// digits and hyphens (RFC 1123), or an address.
fn valid_hostname(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || (name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }))
}

/// An address or name as a URL's host (`[::1]` for IPv6).
fn url_host(name: &str) -> String {
    if name.contains(':') { format!("[{name}]") } else { name.to_string() }
}

/// How the lab's own parts reach a listener bound to `ip`: `localhost` (127.0.0.1, which the
/// certificate names) for 127.0.0.1 or all addresses, else the one address it listens on (a
/// LAN address, 127.0.0.2: nothing listens on 127.0.0.1 then; the certificate names it too).
fn local_host(ip: std::net::IpAddr) -> String {
    if ip.is_unspecified() || ip == std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST) {
        "localhost".into()
    } else {
        url_host(&ip.to_string())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EngineInfo {
    /// The engine's registration id in the tenant.
    pub id: String,
    /// `ConnectSync` or `CloudSync`.
    pub kind: relay::AgentKind,
}

/// Cloud Sync's provisioning agent in a lab.
#[derive(Clone, Debug, Serialize)]
pub struct CloudSyncInfo {
    /// Its registration id in the tenant.
    pub id: String,
    /// The group managed service account it runs as.
    pub gmsa: String,
    /// The OUs it provisions.
    pub scope: Vec<String>,
}

/// Cloud Sync's agent as its installer leaves it: the gMSA it runs as (DN and password) and
/// the OUs its configuration scopes.
struct ProvisioningAgent {
    gmsa_dn: String,
    gmsa_password: String,
    scope: Vec<String>,
}

/// Onboards the writeback engine with the tenant's Global Administrator (as the Connect wizard
/// does), then starts it and waits for its relay link.
async fn start_engine(cfg: &LabConfig, info: &LabInfo) -> Result<writeback::Engine> {
    // the connector's credentials, as the environment holds them (a directory restored from
    // LDIF keeps the connector's hash; the environment still knows its password)
    let Some(connector) = info.users.iter().find(|u| u.sam == testlab::CONNECTOR) else {
        anyhow::bail!("writeback engine: the directory has no {} connector account (start with --no-engine)", testlab::CONNECTOR)
    };
    let connector_dn = connector.dn.clone();
    let connector_password = connector.password.clone().unwrap_or_else(|| testlab::CONNECTOR_PASSWORD.into());
    let scope = match &cfg.sync_scope {
        Some(s) => s.clone(),
        None if cfg.adds_ldif.is_none() => vec![format!("{},{}", testlab::SYNC_OU, info.adds.base_dn)],
        None => vec![],
    };
    start_agent(cfg, info, relay::AgentKind::ConnectSync, (connector_dn, connector_password), scope).await
}

/// Registers Cloud Sync's provisioning agent with the tenant's Global Administrator (as its
/// installer does), then starts it, running as its gMSA, and waits for its link.
async fn start_provisioning_agent(cfg: &LabConfig, info: &LabInfo, a: &ProvisioningAgent) -> Result<writeback::Engine> {
    start_agent(cfg, info, relay::AgentKind::CloudSync, (a.gmsa_dn.clone(), a.gmsa_password.clone()), a.scope.clone()).await
}

async fn start_agent(
    cfg: &LabConfig,
    info: &LabInfo,
    kind: relay::AgentKind,
    (connector_dn, connector_password): (String, String),
    sync_scope: Vec<String>,
) -> Result<writeback::Engine> {
    let what = match kind {
        relay::AgentKind::ConnectSync => "writeback engine",
        relay::AgentKind::CloudSync => "Cloud Sync's provisioning agent",
    };
    let ca_pem = std::fs::read(&info.adds.ca_cert)?;
    let ecfg = writeback::Config {
        tenant_https: info.tenant.https.clone(),
        tenant_id: info.tenant.tenant_id.clone(),
        client_id: info.tenant.client_id.clone(),
        ca_pem,
        ldaps: info.adds.ldaps.clone(),
        // (an external DC's plain port is not the lab's to assume)
        ldap: cfg.external_adds.is_none().then(|| info.adds.ldap.clone()),
        connector_dn,
        connector_password,
        base_dn: info.adds.base_dn.clone(),
        // Cloud Sync's anchor is mS-DS-ConsistencyGuid falling back to objectGUID, and it never
        // writes the former: on the testlab's users (none carry one) that is objectGUID
        source_anchor: if kind == relay::AgentKind::CloudSync { writeback::SourceAnchor::ObjectGuid } else { cfg.source_anchor },
        sync_scope,
        clock: cfg.clock.clone(),
        kind,
        domain_controllers: match cfg.external_adds {
            Some(_) => vec![],
            None => info.adds.dcs.iter().map(dc_endpoint).collect(),
        },
        // Connect's wizard connected the other domains too, each with the connector account
        // "Add Directory" made there (Cloud Sync's agent serves the testlab's domain)
        directories: match kind {
            relay::AgentKind::CloudSync => vec![],
            relay::AgentKind::ConnectSync => info
                .adds
                .domains
                .iter()
                .skip(1)
                .filter_map(|d| {
                    Some(writeback::connectors::DirectoryConfig {
                        name: d.domain.clone(),
                        base_dn: d.base_dn.clone(),
                        domain_controllers: d.dcs.iter().map(dc_endpoint).collect(),
                        connector_dn: d.connector.clone()?,
                        connector_password: forests::CONNECTOR_PASSWORD.into(),
                        sync_scope: vec![format!("{},{}", testlab::SYNC_OU, d.base_dn)],
                    })
                })
                .collect(),
        },
    };
    let log = writeback::EventLog::for_agent(cfg.clock.clone(), kind);
    // the OS user's engine key (made once, never on a lab's start path): userkeys; the
    // provisioning agent's, the first time this OS user runs a Cloud Sync lab
    let key = match kind {
        relay::AgentKind::ConnectSync => userkeys::get().engine.clone(),
        relay::AgentKind::CloudSync => tokio::task::spawn_blocking(userkeys::provisioning_agent).await?,
    };
    let (upn, password) = (&info.tenant.admin_upn, &info.tenant.admin_password);
    // the connector space is read over LDAP while the engine onboards, and the relay link
    // comes up after (none needs another; a lab start waits for all)
    // (an external directory offers no way to read hashes the engine knows: no baseline)
    let baseline = cfg.presynced && cfg.external_adds.is_none() && info.users.iter().any(|u| u.synced && u.agent == Some(kind));
    // (a task of its own: on another core when there is one)
    let read = baseline.then(|| {
        let ecfg = ecfg.clone();
        tokio::spawn(async move { writeback::Baseline::read(&ecfg).await })
    });
    let reg = match cfg.password_writeback || kind == relay::AgentKind::CloudSync {
        true => writeback::onboard(&ecfg, key, upn, password, &log).await,
        false => writeback::install(&ecfg, key, upn, password, &log).await,
    };
    let reg = reg.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    // the relay link comes up while the connector space is still being read: nothing runs a
    // cycle or sends a request before the lab's start returns, after both
    let engine = writeback::Engine::start(ecfg, reg, log).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if let Some(task) = read {
        let read = task.await?.map_err(|e| anyhow::anyhow!("{what}: reading the directory for sync: {e}"))?;
        engine.adopt(read).await;
    }
    if !engine.wait_connected(std::time::Duration::from_secs(10)).await {
        anyhow::bail!("{what}: no relay link after 10 s");
    }
    Ok(engine)
}

fn dc_endpoint(d: &DcInfo) -> writeback::dcs::DcEndpoint {
    writeback::dcs::DcEndpoint { name: d.name.clone(), ldaps: d.ldaps.clone(), ldap: Some(d.ldap.clone()) }
}

#[derive(Clone, Debug, Serialize)]
pub struct TenantInfo {
    pub https: String,
    pub http: String,
    /// MSAL's authority: the https base and the tenant id.
    pub authority: String,
    /// Base of Graph v1.0 (`{graph}/users`).
    pub graph: String,
    pub tenant_id: String,
    pub admin_upn: String,
    pub admin_password: String,
    pub client_id: String,
    pub client_secret: String,
}

impl TenantInfo {
    /// For a LabInfo that describes only a directory (an external one): no tenant.
    pub fn none() -> TenantInfo {
        TenantInfo {
            https: String::new(),
            http: String::new(),
            authority: String::new(),
            graph: String::new(),
            tenant_id: String::new(),
            admin_upn: String::new(),
            admin_password: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AddsInfo {
    /// The first DC's (DC1, the PDC emulator); every DC's in `dcs`.
    pub ldap: String,
    pub ldaps: String,
    /// Every domain controller of the domain.
    pub dcs: Vec<DcInfo>,
    /// Every domain of the lab, the testlab first (`--forests 2`, `--child-domain`).
    pub domains: Vec<DomainInfo>,
    pub base_dn: String,
    pub domain: String,
    pub netbios: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub ca_cert: PathBuf,
}

/// One domain of the lab.
#[derive(Clone, Debug, Serialize)]
pub struct DomainInfo {
    pub domain: String,
    pub netbios: String,
    pub base_dn: String,
    /// Its forest root's DNS name.
    pub forest: String,
    pub dcs: Vec<DcInfo>,
    pub admin_dn: String,
    pub admin_password: String,
    /// Connect's AD connector account for it (None: an external directory's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
}

/// One domain controller of the lab's domain.
#[derive(Clone, Debug, Serialize)]
pub struct DcInfo {
    pub name: String,
    pub ldap: String,
    pub ldaps: String,
    /// Holds the PDC emulator role (the first DC).
    pub pdc: bool,
}

pub struct Lab {
    pub info: LabInfo,
    pub clock: Clock,
    /// The AD DS's state, for the lab's own control surface (never for scenario steps);
    /// None when the AD DS is an external directory. The first DC's.
    pub adds: Option<Arc<DomainController>>,
    /// The domain's DCs and their replication, in a lab with more than one.
    pub topology: Option<Arc<ad_ds::topology::Topology>>,
    /// Every domain's DCs and their replication (the testlab's first), where a domain has
    /// more than one DC.
    pub topologies: Vec<Arc<ad_ds::topology::Topology>>,
    /// The tenant's state, likewise.
    pub tenant: Arc<tenant::server::TenantServer>,
    /// The writeback engine, when the lab runs one (its controls are the lab's fault switches);
    /// Cloud Sync's provisioning agent when that is the lab's only agent.
    pub engine: Option<writeback::Engine>,
    /// Cloud Sync's provisioning agent, when the lab runs one (the same as `engine` when it is
    /// the only agent).
    pub cloud_sync: Option<writeback::Engine>,
    /// Pass-through authentication's agents (with the engine).
    pub agents: Option<Arc<writeback::pta::Agents>>,
    /// What the lab noticed about its configuration that an operator should hear.
    pub warnings: Vec<String>,
    /// The pages (an exercise's checklist is handed to them: [`Lab::begin_exercise`]).
    pub portal: Arc<portal::Portal>,
    /// Its TLS identity: a reset serves it again (LabConfig::tls_identity), so clients keep
    /// trusting the same CA.
    pub tls: ad_ds::tls::TlsIdentity,
    /// Where its listeners are: a reset listens there again.
    pub listening: Listening,
    reset: Option<Arc<tokio::sync::Notify>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Lab {
    pub async fn start(cfg: LabConfig) -> Result<Lab> {
        let domain = testlab::domain(cfg.seed);
        let ldif = match &cfg.adds_ldif {
            None => None,
            Some((name, text)) => Some((name, ad_ds::ldif::parse(text).map_err(|e| anyhow::anyhow!("{name}:{e}"))?)),
        };
        if cfg.sync_agents.cloud_sync() {
            if ldif.is_some() {
                anyhow::bail!("Cloud Sync's provisioning agent runs on the built-in testlab only (not with a directory from LDIF)");
            }
            if cfg.sign_in == tenant::signins::SignInMethod::PassThroughAuthentication && !cfg.sync_agents.connect_sync() {
                anyhow::bail!(
                    "pass-through authentication is configured with Connect Sync; Cloud Sync cannot configure it (start with --agent both)"
                );
            }
        }
        let users = match &ldif {
            None => testlab::users(&domain, cfg.load_users, cfg.sync_agents),
            Some((_, records)) => users_in_ldif(records),
        };
        // the tenant's seeded passwords: salted now, their PBKDF2 left to the sign-in that needs
        // one (see TenantHashing)
        let synced: Vec<(String, String)> = match cfg.presynced {
            true => users.iter().filter(|u| u.synced).filter_map(|u| Some((u.upn.clone(), u.password.clone()?))).collect(),
            false => vec![],
        };
        let hashing = testlab::TenantHashing::new(synced);
        // this process's first lab reads the OS user's keys beside the start (~1 ms of parsing)
        std::thread::spawn(userkeys::get);

        let mut dir = Directory::new(domain.clone(), cfg.clock.clone());
        match ldif {
            None => testlab::seed(&mut dir, &users),
            Some((name, records)) => {
                dir.import(records).map_err(|e| anyhow::anyhow!("{name}:{e}"))?;
                // Rights are not part of LDIF: a saved testlab gets its connector's back.
                testlab::grant_writeback_rights(&mut dir);
            }
        }
        if !(1..=MAX_DCS).contains(&cfg.dcs) {
            anyhow::bail!("--dcs {}: a lab runs 1 to {MAX_DCS} domain controllers", cfg.dcs);
        }
        if cfg.dcs > 1 && cfg.external_adds.is_some() {
            anyhow::bail!("--dcs: an external directory brings its own domain controllers (start the built-in AD DS for several)");
        }
        if !(1..=2).contains(&cfg.forests) {
            anyhow::bail!("--forests {}: a lab runs testlab's forest and at most one more (fabrikam.example)", cfg.forests);
        }
        if (cfg.forests > 1 || cfg.child_domain) && cfg.external_adds.is_some() {
            anyhow::bail!("--forests and --child-domain are for the built-in AD DS");
        }
        if cfg.child_domain {
            dir.set_forest(forests::testlab_forest(cfg.dcs));
        }
        // the other DCs' computer accounts, as dcpromo leaves them (the replicas copy them)
        for i in 2..=cfg.dcs {
            ad_ds::domain::add_domain_controller(&mut dir, &format!("DC{i}")).map_err(|e| anyhow::anyhow!("DC{i}: {e}"))?;
        }
        // Cloud Sync's installer: its gMSA and rights (an external directory gets them when
        // it is seeded)
        let provisioning = cfg.sync_agents.cloud_sync().then(|| {
            let password = testlab::gmsa_password();
            let base = dir.base_dn().to_string();
            let gmsa_dn = match cfg.external_adds {
                Some(_) => format!("CN={},{},{base}", writeback::CLOUD_SYNC_GMSA.trim_end_matches('$'), testlab::MANAGED_SERVICE_ACCOUNTS),
                None => testlab::install_provisioning_agent(&mut dir, &password),
            };
            // alone it takes Connect's place (its scope, `--sync-ou`'s when given); beside
            // Connect, its own OU
            let scope = match (cfg.sync_agents, &cfg.sync_scope) {
                (SyncAgents::Both, _) => vec![format!("{},{base}", testlab::CLOUD_SYNC_OU)],
                (_, Some(s)) => s.clone(),
                (_, None) => vec![format!("{},{base}", testlab::SYNC_OU)],
            };
            ProvisioningAgent { gmsa_dn, gmsa_password: password, scope }
        });

        std::fs::create_dir_all(&cfg.state_dir).with_context(|| format!("creating {}", cfg.state_dir.display()))?;
        for name in &cfg.hostnames {
            if !valid_hostname(name) {
                anyhow::bail!("--hostname {name:?}: not a DNS name or an IP address");
            }
        }
        let tls = match (&cfg.tls_identity, &cfg.tls_files) {
            (Some(identity), _) => identity.clone(),
            (None, Some((cert, key))) => ad_ds::tls::load(cert, key)?,
            (None, None) => {
                let host = format!("{}.{}", domain.dc_name.to_lowercase(), domain.dns_name);
                let mut names = vec!["localhost".into(), "127.0.0.1".into(), host, domain.dns_name.clone()];
                names.extend((2..=cfg.dcs).map(|i| format!("dc{i}.{}", domain.dns_name)));
                for o in cfg.other_domains() {
                    names.push(o.dns_name().to_string());
                    names.extend((1..=cfg.dcs).map(|i| format!("{}.{}", o.dc_name(i).to_lowercase(), o.dns_name())));
                }
                // the addresses it listens on and the names it is served under
                let specific = [cfg.https.ip(), cfg.ldaps.ip()].into_iter().filter(|ip| !ip.is_unspecified()).map(|ip| ip.to_string());
                for n in specific.chain(cfg.hostnames.iter().map(|n| n.to_ascii_lowercase())) {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
                ad_ds::tls::generate(&names, &domain.netbios)?
            }
        };
        // with an external directory, the bundle clients trust holds its CA as well
        let ext = cfg.external_adds.as_ref();
        let mut ca_bundle = tls.ca_pem.as_bytes().to_vec();
        if let Some(e) = ext {
            ca_bundle.extend(b"\n");
            ca_bundle.extend(&e.ca_pem);
        }
        let ca_cert = cfg.state_dir.join("ca.pem");
        std::fs::write(&ca_cert, &ca_bundle).with_context(|| format!("writing {}", ca_cert.display()))?;
        let ca_cert = ca_cert.canonicalize().unwrap_or(ca_cert);

        let directory_listeners = match ext {
            Some(_) => None,
            None => Some((
                TcpListener::bind(cfg.ldap).await.with_context(|| format!("LDAP listener on {}", cfg.ldap))?,
                TcpListener::bind(cfg.ldaps).await.with_context(|| format!("LDAPS listener on {}", cfg.ldaps))?,
            )),
        };
        // the other DCs' listeners: where a reset found them, else any free port
        let mut dc_listeners = vec![];
        for i in 2..=cfg.dcs {
            let any = SocketAddr::new(cfg.ldap.ip(), 0);
            let (ldap, ldaps) = cfg.dc_listeners.get(i - 2).copied().unwrap_or((any, any));
            dc_listeners.push((
                TcpListener::bind(ldap).await.with_context(|| format!("DC{i}'s LDAP listener on {ldap}"))?,
                TcpListener::bind(ldaps).await.with_context(|| format!("DC{i}'s LDAPS listener on {ldaps}"))?,
            ));
        }
        // the other domains' DCs' listeners, likewise
        let mut domain_listeners = vec![];
        for (k, o) in cfg.other_domains().into_iter().enumerate() {
            let mut ls = vec![];
            for i in 1..=cfg.dcs {
                let any = SocketAddr::new(cfg.ldap.ip(), 0);
                let (ldap, ldaps) = cfg.domain_listeners.get(k).and_then(|d| d.get(i - 1)).copied().unwrap_or((any, any));
                let name = o.dc_name(i);
                ls.push((
                    TcpListener::bind(ldap).await.with_context(|| format!("{name}'s LDAP listener on {ldap}"))?,
                    TcpListener::bind(ldaps).await.with_context(|| format!("{name}'s LDAPS listener on {ldaps}"))?,
                ));
            }
            domain_listeners.push((o, ls));
        }
        let https = TcpListener::bind(cfg.https).await.with_context(|| format!("HTTPS listener on {}", cfg.https))?;
        let http = TcpListener::bind(cfg.http).await.with_context(|| format!("HTTP listener on {}", cfg.http))?;
        let (https_addr, http_addr) = (https.local_addr()?, http.local_addr()?);

        // The tenant, seeded from the AD objects as Connect would have left it.
        let mut id_bytes = [0u8; 16];
        id_bytes[..8].copy_from_slice(&cfg.seed.to_le_bytes());
        id_bytes[8..].copy_from_slice(b"tenantid");
        let tenant_id = uuid::Builder::from_random_bytes(id_bytes).into_uuid();
        // the custom domains the tenant verified: testlab's, and the second forest's; the child
        // domain's suffix is not added, so its users arrive on the initial domain
        let mut domains = vec![testlab::INITIAL_DOMAIN.to_string(), domain.dns_name.clone()];
        domains.extend(cfg.other_domains().into_iter().filter(|o| o.verified_in_tenant()).map(|o| o.dns_name().to_string()));
        let mut t = tenant::directory::Tenant::new(tenant_id, testlab::TENANT_NAME, domains, cfg.clock.clone(), cfg.seed);
        // before Connect's first cycle nothing on-premises has a cloud twin yet
        let users: Vec<SeededUser> =
            if cfg.presynced { users } else { users.into_iter().map(|u| SeededUser { synced: false, cloud: false, ..u }).collect() };
        let anchor = cfg.source_anchor.attribute();
        let objects = match ext {
            Some(e) => {
                let agent = provisioning.as_ref().map(|p| p.gmsa_password.as_str());
                external::seed(e, &dir, &users, anchor, agent).await.map_err(|m| anyhow::anyhow!("{}: {m}", e.ldaps))?
            }
            None => {
                if cfg.source_anchor == writeback::SourceAnchor::ConsistencyGuid {
                    testlab::stamp_consistency_guids(&mut dir, &users);
                }
                testlab::on_prem_objects(&dir, &users, anchor)
            }
        };
        let hashed = hashing.finish();
        let (cloud_users, client_id) = testlab::seed_tenant(&mut t, &domain.dns_name, &users, &objects, hashed);
        // the Cloud Sync tutorial's end state: "Write back passwords with Microsoft Entra
        // Connect cloud sync" checked (an exercise starts before it)
        t.on_premises_integration.write_back_with_cloud_sync = cfg.sync_agents.cloud_sync() && cfg.password_writeback;
        // the lab's pages sign users in as a web app does (the authorization code flow), back
        // at their callback under every name the lab answers to
        if let Some(app) = t.app_mut(&client_id) {
            let mut https_names = vec!["localhost".to_string(), "127.0.0.1".to_string(), local_host(https_addr.ip())];
            https_names.extend(cfg.hostnames.iter().map(|n| url_host(&n.to_ascii_lowercase())));
            https_names.extend([format!("{}.{}", domain.dc_name.to_lowercase(), domain.dns_name), domain.dns_name.clone()]);
            let mut uris: Vec<String> =
                https_names.iter().map(|n| format!("https://{n}:{}/portal/signin/callback", https_addr.port())).collect();
            for n in ["localhost".to_string(), "127.0.0.1".to_string(), local_host(http_addr.ip())] {
                uris.push(format!("http://{n}:{}/portal/signin/callback", http_addr.port()));
            }
            uris.dedup();
            app.web_redirect_uris = uris;
        }
        // the lab's own parts reach it over loopback, or by the address it listens on when
        // that is one address (a LAN address has no loopback listener); others by its names
        let https_base = format!("https://{}:{}", local_host(https_addr.ip()), https_addr.port());
        let public_base = match cfg.hostnames.first() {
            Some(name) => format!("https://{}:{}", url_host(name), https_addr.port()),
            None => https_base.clone(),
        };
        let relay = Arc::new(tenant::server::engines::RelayHub::new(cfg.clock.clone()));
        let pta = Arc::new(tenant::server::pta::PtaHub::new(cfg.clock.clone(), cfg.seed));
        let tenant_server = Arc::new(tenant::server::TenantServer {
            pta,
            tenant: std::sync::Mutex::new(t),
            // the OS user's key under this lab's own random kid: another lab's tokens are refused
            signer: tenant::token::Signer::new(userkeys::get().signing.clone()),
            https_base: public_base.clone(),
            clock: cfg.clock.clone(),
            writeback: Arc::new(relay.clone()),
            relay,
            gates: Default::default(),
        });
        let identity = tls.clone();
        let mut http_tls = (*tls.config).clone();
        http_tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let base_dn = dir.base_dn().to_string();
        let connector_dn = dir.by_sam(testlab::CONNECTOR).map(|e| e.dn.to_string());
        // an OU directory sync is told to cover that does not exist syncs nothing: say so
        let mut warnings = vec![];
        if ext.is_none() {
            for ou in cfg.sync_scope.iter().flatten() {
                let exists = ad_ds::dn::Dn::parse(ou).ok().is_some_and(|dn| dir.get(&dn.key()).is_some());
                if !exists {
                    warnings.push(format!("--sync-ou {ou}: no such object in the directory; directory sync will find nothing there"));
                }
            }
        }
        // the other domains: each one's first DC seeded, replicas of it
        let mut others: Vec<(forests::OtherDomain, Vec<Arc<DomainController>>)> = vec![];
        for (o, _) in &domain_listeners {
            let forest = (*o == forests::OtherDomain::Child).then(|| forests::testlab_forest(cfg.dcs));
            let first = o.directory(cfg.seed, cfg.clock.clone(), forest, cfg.dcs).map_err(|e| anyhow::anyhow!("{}: {e}", o.dns_name()))?;
            let copies: Vec<ad_ds::Directory> = (2..=cfg.dcs).map(|i| first.replica(&o.dc_name(i), (i - 1) as u8)).collect();
            let dcs = std::iter::once(first)
                .chain(copies)
                .map(|d| DomainController::with_limits(d, Some(tls.clone()), cfg.limits.ldap))
                .collect();
            others.push((*o, dcs));
        }
        // the other DCs: copies of the first as it stands (AD's initial replication)
        let replicas: Vec<ad_ds::Directory> = (2..=cfg.dcs).map(|i| dir.replica(&format!("DC{i}"), (i - 1) as u8)).collect();
        let replicas: Vec<Arc<DomainController>> =
            replicas.into_iter().map(|r| DomainController::with_limits(r, Some(tls.clone()), cfg.limits.ldap)).collect();
        let dc = directory_listeners.as_ref().map(|_| DomainController::with_limits(dir, Some(tls), cfg.limits.ldap));
        let topology = match &dc {
            Some(first) if !replicas.is_empty() => {
                Some(ad_ds::topology::Topology::new(std::iter::once(first.clone()).chain(replicas.iter().cloned()).collect()))
            }
            _ => None,
        };
        let mut topologies: Vec<Arc<ad_ds::topology::Topology>> = topology.iter().cloned().collect();
        topologies.extend(others.iter().filter(|(_, dcs)| dcs.len() > 1).map(|(_, dcs)| ad_ds::topology::Topology::new(dcs.clone())));
        let (stop, rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        // the lab's HTTP front: the tenant, and the engine's status and switches (late-bound:
        // the engine onboards through the tenant once that listens)
        let engine_slot: Arc<std::sync::OnceLock<writeback::Engine>> = Arc::default();
        let cloud_sync_slot: Arc<std::sync::OnceLock<writeback::Engine>> = Arc::default();
        let agents_slot: Arc<std::sync::OnceLock<Arc<writeback::pta::Agents>>> = Arc::default();
        let reset = cfg.resettable.then(Arc::<tokio::sync::Notify>::default);
        let mut app = tenant::server::app(tenant_server.clone())
            .merge(writeback::control_router(engine_slot.clone()))
            .merge(writeback::control_router_at(cloud_sync_slot.clone(), "/lab/cloudsync"))
            .merge(writeback::pta_router(agents_slot.clone()))
            .merge(control::reset_router(reset.clone()));
        let mut listening = Listening { ldap: None, ldaps: None, https: https_addr, http: http_addr, dcs: vec![], domains: vec![] };
        let mut tasks = vec![];
        let mut dc_urls: Vec<DcInfo> = vec![];
        let mut other_infos: Vec<DomainInfo> = vec![];
        let (ldap_url, ldaps_url) = match (&dc, directory_listeners) {
            (Some(dc), Some((ldap, ldaps))) => {
                let all: Vec<Arc<DomainController>> = std::iter::once(dc.clone())
                    .chain(replicas.iter().cloned())
                    .chain(others.iter().flat_map(|(_, dcs)| dcs.iter().cloned()))
                    .collect();
                app = app.merge(control::router(all, topologies.clone(), connector_dn));
                (listening.ldap, listening.ldaps) = (Some(ldap.local_addr()?), Some(ldaps.local_addr()?));
                let reach = |a: SocketAddr| {
                    if a.ip().is_unspecified() { SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), a.port()) } else { a }
                };
                let urls = (format!("ldap://{}", reach(ldap.local_addr()?)), format!("ldaps://{}", reach(ldaps.local_addr()?)));
                dc_urls.push(DcInfo { name: domain.dc_name.clone(), ldap: urls.0.clone(), ldaps: urls.1.clone(), pdc: true });
                tasks.push(tokio::spawn(ad_ds::serve(ldap, dc.clone(), Transport::Ldap, stopped(rx.clone()))));
                tasks.push(tokio::spawn(ad_ds::serve(ldaps, dc.clone(), Transport::Ldaps, stopped(rx.clone()))));
                for (i, ((ldap, ldaps), r)) in dc_listeners.into_iter().zip(&replicas).enumerate() {
                    listening.dcs.push((ldap.local_addr()?, ldaps.local_addr()?));
                    let name = format!("DC{}", i + 2);
                    dc_urls.push(DcInfo {
                        name,
                        ldap: format!("ldap://{}", reach(ldap.local_addr()?)),
                        ldaps: format!("ldaps://{}", reach(ldaps.local_addr()?)),
                        pdc: false,
                    });
                    tasks.push(tokio::spawn(ad_ds::serve(ldap, r.clone(), Transport::Ldap, stopped(rx.clone()))));
                    tasks.push(tokio::spawn(ad_ds::serve(ldaps, r.clone(), Transport::Ldaps, stopped(rx.clone()))));
                }
                // the other domains' DCs
                for ((o, ls), (_, dcs)) in domain_listeners.into_iter().zip(&others) {
                    let mut infos = vec![];
                    let mut addrs = vec![];
                    for (i, ((ldap, ldaps), dc)) in ls.into_iter().zip(dcs).enumerate() {
                        addrs.push((ldap.local_addr()?, ldaps.local_addr()?));
                        infos.push(DcInfo {
                            name: o.dc_name(i + 1),
                            ldap: format!("ldap://{}", reach(ldap.local_addr()?)),
                            ldaps: format!("ldaps://{}", reach(ldaps.local_addr()?)),
                            pdc: i == 0,
                        });
                        tasks.push(tokio::spawn(ad_ds::serve(ldap, dc.clone(), Transport::Ldap, stopped(rx.clone()))));
                        tasks.push(tokio::spawn(ad_ds::serve(ldaps, dc.clone(), Transport::Ldaps, stopped(rx.clone()))));
                    }
                    listening.domains.push(addrs);
                    let base = ad_ds::dn::Dn::from_dns_domain(o.dns_name()).to_string();
                    other_infos.push(DomainInfo {
                        domain: o.dns_name().into(),
                        netbios: o.netbios().into(),
                        admin_dn: format!("CN=Administrator,CN=Users,{base}"),
                        connector: Some(format!("CN={},CN=Users,{base}", o.connector())),
                        base_dn: base,
                        forest: o.forest().into(),
                        dcs: infos,
                        admin_password: testlab::ADMIN_PASSWORD.into(),
                    });
                }
                urls
            }
            _ => {
                let url = ext.map(|e| e.ldaps.trim_end_matches('/').to_string()).unwrap_or_default();
                let host = url.trim_start_matches("ldaps://").rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default();
                (format!("ldap://{host}:389"), url)
            }
        };
        // the pages for people: clients of the tenant's API over HTTPS (passwords and tokens
        // never cross plain HTTP, even on loopback), and of the AD DS over LDAPS as its
        // administrator (the dashboard's views)
        let pages = portal::Portal::new(portal::Config {
            api: https_base.clone(),
            api_ca_pem: ca_bundle.clone(),
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            client_secret: testlab::CLIENT_SECRET.into(),
            adds: Some(portal::AddsAccess {
                ldaps: ldaps_url.clone(),
                admin_dn: ext.map(|e| e.admin_dn.clone()).unwrap_or_else(|| format!("CN=Administrator,CN=Users,{base_dn}")),
                admin_password: ext.map(|e| e.admin_password.clone()).unwrap_or_else(|| domain.admin_password.clone()),
                base_dn: base_dn.clone(),
                ca_pem: ca_bundle.clone(),
                own: Default::default(),
            }),
            resettable: cfg.resettable,
        });
        let app = app.merge(portal::router(pages.clone()));
        // the lab's front door around all of it: its own host names only, no cross-site
        // writes, JSON for the APIs, the lab administrator for /lab/ (tenant::server::guard)
        let mut names = vec![format!("{}.{}", domain.dc_name.to_lowercase(), domain.dns_name), domain.dns_name.clone()];
        names.extend(cfg.hostnames.iter().map(|n| n.to_ascii_lowercase()));
        for a in [https_addr, http_addr] {
            if !a.ip().is_unspecified() {
                names.push(a.ip().to_string());
            }
        }
        let app = tenant::server::guard::protect(app, tenant_server.clone(), tenant::server::guard::Hosts { names });
        let limits = cfg.limits.http;
        tasks.push(tokio::spawn(tenant::server::serve_with(https, app.clone(), Some(Arc::new(http_tls)), limits, stopped(rx.clone()))));
        tasks.push(tokio::spawn(tenant::server::serve_with(http, app, None, limits, stopped(rx))));
        let mut all_users = users;
        all_users.extend(cloud_users);
        // the other domains' users (Connect syncs the testlab's)
        all_users.extend(others.iter().flat_map(|(o, _)| o.users()));
        let dcs_info = if dc_urls.is_empty() {
            vec![DcInfo { name: domain.dc_name.clone(), ldap: ldap_url.clone(), ldaps: ldaps_url.clone(), pdc: true }]
        } else {
            dc_urls
        };
        let info = LabInfo {
            dashboard: format!("{https_base}/portal/lab"),
            sspr: format!("{https_base}/portal/sspr"),
            adds: AddsInfo {
                dcs: dcs_info.clone(),
                domains: std::iter::once(DomainInfo {
                    domain: domain.dns_name.clone(),
                    netbios: domain.netbios.clone(),
                    base_dn: base_dn.clone(),
                    forest: domain.dns_name.clone(),
                    dcs: dcs_info,
                    admin_dn: ext.map(|e| e.admin_dn.clone()).unwrap_or_else(|| format!("CN=Administrator,CN=Users,{base_dn}")),
                    admin_password: ext.map(|e| e.admin_password.clone()).unwrap_or_else(|| domain.admin_password.clone()),
                    connector: ext.is_none().then(|| format!("CN={},CN=Users,{base_dn}", testlab::CONNECTOR)),
                })
                .chain(other_infos)
                .collect(),
                ldap: ldap_url,
                ldaps: ldaps_url,
                admin_dn: ext.map(|e| e.admin_dn.clone()).unwrap_or_else(|| format!("CN=Administrator,CN=Users,{base_dn}")),
                base_dn,
                domain: domain.dns_name.clone(),
                netbios: domain.netbios.clone(),
                admin_password: ext.map(|e| e.admin_password.clone()).unwrap_or_else(|| domain.admin_password.clone()),
                ca_cert,
            },
            tenant: TenantInfo {
                https: https_base.clone(),
                http: format!("http://{http_addr}"),
                authority: format!("{https_base}/{tenant_id}"),
                graph: format!("{https_base}/v1.0"),
                tenant_id: tenant_id.to_string(),
                admin_upn: testlab::CLOUD_ADMIN.0.into(),
                admin_password: testlab::CLOUD_ADMIN.1.into(),
                client_id: client_id.to_string(),
                client_secret: testlab::CLIENT_SECRET.into(),
            },
            users: all_users,
            engine: None,
            cloud_sync: None,
            exercise: None,
            sign_in: Default::default(),
            pta_agents: vec![],
        };
        // Connect's engine and Cloud Sync's agent register side by side (each its own key)
        let (engine, cloud_sync) = match (cfg.engine, &provisioning) {
            (false, _) => (None, None),
            (true, None) => (Some(start_engine(&cfg, &info).await?), None),
            (true, Some(p)) if !cfg.sync_agents.connect_sync() => {
                let a = start_provisioning_agent(&cfg, &info, p).await?;
                (Some(a.clone()), Some(a))
            }
            (true, Some(p)) => {
                let (e, a) = tokio::try_join!(start_engine(&cfg, &info), start_provisioning_agent(&cfg, &info, p))?;
                (Some(e), Some(a))
            }
        };
        if let Some(a) = &cloud_sync {
            let _ = cloud_sync_slot.set(a.clone());
        }
        let scheduled: Vec<writeback::Engine> = match (&engine, &cloud_sync) {
            (Some(e), Some(a)) if e.id() != a.id() => vec![e.clone(), a.clone()],
            (Some(e), _) => vec![e.clone()],
            _ => vec![],
        };
        if let Some(e) = &engine {
            let _ = engine_slot.set(e.clone());
        }
        for e in scheduled {
            if cfg.sync_schedule {
                // each agent's scheduler, on the lab clock: a look every second at what is due
                let mut stopped = stop.subscribe();
                tasks.push(tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stopped.changed() => break,
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                                // a cycle under way does not hold the lab's stop up
                                tokio::select! {
                                    _ = stopped.changed() => break,
                                    _ = e.run_due() => {}
                                }
                            }
                        }
                    }
                }));
            }
        }
        for t in topologies.iter().filter(|_| cfg.sync_schedule) {
            // replication on the lab clock, looked at every second like the agents' schedules
            let (t, mut stopped) = (t.clone(), stop.subscribe());
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                            let t = t.clone();
                            let _ = tokio::task::spawn_blocking(move || t.run_due()).await;
                        }
                    }
                }
            }));
        }
        let mut info = info;
        info.engine = engine.as_ref().map(|e| EngineInfo { id: e.id().to_string(), kind: e.kind() });
        info.cloud_sync = cloud_sync.as_ref().zip(provisioning.as_ref()).map(|(a, p)| CloudSyncInfo {
            id: a.id().to_string(),
            gmsa: p.gmsa_dn.clone(),
            scope: p.scope.clone(),
        });
        // pass-through authentication: the agents (Connect's beside the engine, then the
        // standalone ones), registered with the tenant's administrator — Connect's feature
        let agents = match &engine {
            Some(_) if cfg.sync_agents.connect_sync() => {
                let agents = writeback::pta::Agents::new(writeback::pta::AgentSetup {
                    tenant_https: info.tenant.https.clone(),
                    tenant_id: info.tenant.tenant_id.clone(),
                    client_id: info.tenant.client_id.clone(),
                    ca_pem: std::fs::read(&info.adds.ca_cert)?,
                    ldaps: info.adds.ldaps.clone(),
                    clock: cfg.clock.clone(),
                    keys: Arc::new(userkeys::agent),
                });
                let _ = agents_slot.set(agents.clone());
                Some(agents)
            }
            _ if cfg.sign_in == tenant::signins::SignInMethod::PassThroughAuthentication || cfg.pta_agents > 0 => {
                anyhow::bail!("pass-through authentication needs the writeback engine (Connect enables it): start without --no-engine")
            }
            _ => None,
        };
        if let Some(agents) = &agents {
            if cfg.pta_agents + usize::from(cfg.sign_in == tenant::signins::SignInMethod::PassThroughAuthentication) > 40 {
                anyhow::bail!("at most 40 authentication agents a tenant (Connect's and {} standalone asked for)", cfg.pta_agents);
            }
            let (upn, pw) = (&info.tenant.admin_upn, &info.tenant.admin_password);
            if cfg.sign_in == tenant::signins::SignInMethod::PassThroughAuthentication {
                agents
                    .change_sign_in(writeback::pta::Method::PassThroughAuthentication, upn, pw)
                    .await
                    .map_err(|e| anyhow::anyhow!("pass-through authentication: {e}"))?;
            }
            for _ in 0..cfg.pta_agents {
                agents.install(false, upn, pw).await.map_err(|e| anyhow::anyhow!("authentication agent: {e}"))?;
            }
            info.pta_agents = agents.all().iter().map(|a| AgentInfo { id: a.id().into(), machine_name: a.machine_name().into() }).collect();
        }
        info.sign_in = cfg.sign_in;
        // for other machines: the URLs under the first name it is served under
        if let Some(name) = cfg.hostnames.first() {
            info.served_as(name, &https_base, &public_base);
        }
        Ok(Lab {
            info,
            clock: cfg.clock,
            adds: dc,
            topology,
            topologies,
            tenant: tenant_server,
            engine,
            cloud_sync,
            agents,
            warnings,
            portal: pages,
            tls: identity,
            listening,
            reset,
            stop,
            tasks,
        })
    }

    /// Puts an exercise's checklist on the dashboard; what happened before now does not count
    /// towards it (call it once the exercise's setup is done).
    pub async fn begin_exercise(&self, list: portal::exercise::Checklist) -> Result<()> {
        let t = &self.info.tenant;
        self.portal.begin_exercise(list, &t.admin_upn, &t.admin_password).await.map_err(|e| anyhow::anyhow!("exercise: {e}"))
    }

    /// Stops every listener and waits for them, at most [`STOP_LIMIT`] in all: whatever
    /// still runs then (a connection stuck mid-handshake, a cycle waiting on a DC) is aborted.
    pub async fn stop(mut self) {
        if let Some(e) = &self.engine {
            e.shutdown();
        }
        if let Some(a) = &self.cloud_sync {
            a.shutdown();
        }
        if let Some(a) = &self.agents {
            a.shutdown();
        }
        let _ = self.stop.send(true);
        let until = tokio::time::Instant::now() + STOP_LIMIT;
        for mut t in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout_at(until, &mut t).await.is_err() {
                t.abort();
                // gone once the runtime has dropped it: its listener's port is free again
                let _ = t.await;
            }
        }
    }

    /// Resolves when someone asked for a reset (`POST /lab/reset`, the dashboard's button,
    /// `lab reset`); never for a lab not started `resettable`.
    pub async fn reset_requested(&self) {
        match &self.reset {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    }

    /// The configuration that starts this lab again as it began, where it is now: the same
    /// listeners, the same TLS identity (so the same CA), the same names.
    pub fn config_for_reset(&self, mut cfg: LabConfig) -> LabConfig {
        cfg.ldap = self.listening.ldap.unwrap_or(cfg.ldap);
        cfg.ldaps = self.listening.ldaps.unwrap_or(cfg.ldaps);
        cfg.https = self.listening.https;
        cfg.http = self.listening.http;
        cfg.dc_listeners = self.listening.dcs.clone();
        cfg.domain_listeners = self.listening.domains.clone();
        cfg.tls_identity = Some(self.tls.clone());
        cfg
    }
}

/// The addresses a lab's listeners took (its ports, when started on port 0).
#[derive(Clone, Debug)]
pub struct Listening {
    pub ldap: Option<SocketAddr>,
    pub ldaps: Option<SocketAddr>,
    pub https: SocketAddr,
    pub http: SocketAddr,
    /// The other DCs' (LDAP, LDAPS).
    pub dcs: Vec<(SocketAddr, SocketAddr)>,
    /// The other domains' DCs', domain by domain.
    pub domains: Vec<Vec<(SocketAddr, SocketAddr)>>,
}

/// The most domain controllers a lab runs.
pub const MAX_DCS: usize = 8;

/// A lab dropped without [`Lab::stop`] (a test that ends, or panics) still stops: its engine
/// shuts down and every listener task is cancelled, which closes its sockets as soon as the
/// runtime gets to them (no waiting here: drop cannot await).
impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(e) = &self.engine {
            e.shutdown();
        }
        if let Some(a) = &self.cloud_sync {
            a.shutdown();
        }
        if let Some(a) = &self.agents {
            a.shutdown();
        }
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// User objects of an LDIF seed; the password is known only where the file gave it in clear.
fn users_in_ldif(records: &[ad_ds::ldif::Record]) -> Vec<SeededUser> {
    let get = |r: &ad_ds::ldif::Record, a: &str| {
        r.attrs.iter().find(|(n, _)| n.eq_ignore_ascii_case(a)).map(|(_, v)| String::from_utf8_lossy(v).to_string())
    };
    records
        .iter()
        .filter(|r| {
            let class = |c: &[u8]| r.attrs.iter().any(|(n, v)| n.eq_ignore_ascii_case("objectClass") && v.eq_ignore_ascii_case(c));
            class(b"user") && !class(b"computer")
        })
        .map(|r| SeededUser {
            sam: get(r, "sAMAccountName").unwrap_or_default(),
            upn: get(r, "userPrincipalName").unwrap_or_default(),
            dn: r.dn.clone(),
            password: r
                .attrs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("unicodePwd"))
                .and_then(|(_, v)| ad_ds::password::decode_unicode_pwd(v).ok()),
            about: get(r, "description").unwrap_or_else(|| "seeded from LDIF".into()),
            cloud: false,
            synced: false,
            agent: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostname_is_a_dns_name_or_an_address() {
        for ok in ["lab1.classroom.test", "trainer", "xn--bcher-kva.example", "192.0.2.10", "::1", "a-b.c"] {
            assert!(valid_hostname(ok), "{ok}");
        }
        for bad in ["", "a b", "lab_1.example", "-lab.example", "lab-.example", "a..b", "https://x", "x/y", &"a".repeat(64)] {
            assert!(!valid_hostname(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_labs_own_parts_reach_it_over_loopback_or_its_one_address() {
        assert_eq!(local_host("0.0.0.0".parse().unwrap()), "localhost");
        assert_eq!(local_host("127.0.0.1".parse().unwrap()), "localhost");
        assert_eq!(local_host("127.0.0.2".parse().unwrap()), "127.0.0.2");
        assert_eq!(local_host("192.0.2.10".parse().unwrap()), "192.0.2.10");
        assert_eq!(local_host("::1".parse().unwrap()), "[::1]");
    }
}
