//! A hybrid identity lab as a test fixture: one line starts a fresh, isolated lab — an AD DS
//! domain controller on real LDAP and LDAPS sockets, an Entra ID tenant on HTTPS (OIDC,
//! tokens, a Graph subset, SSPR), and Connect's password writeback and sync engine between
//! them — and dropping it stops everything. Tests talk to it with the clients they already
//! use (`ldap3`, `reqwest`, MSAL); this crate only starts it, says where everything is, and
//! throws the lab's switches.
//!
//! ```
//! use hybrid_lab::{Lab, LabConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), hybrid_lab::Error> {
//! let lab = Lab::start(LabConfig::testlab()).await?;
//! let user1 = lab.user("User1").expect("a seeded user");
//! assert_eq!(user1.upn, "user1@testlab.example");
//! assert!(lab.adds().ldaps_url().starts_with("ldaps://127.0.0.1:"));
//! assert!(lab.tenant().graph_url().ends_with("/v1.0"));
//! # Ok(())
//! # }
//! ```
//!
//! Every lab has its own ports (any free ones on 127.0.0.1), its own state directory (a
//! temporary one unless [`LabConfig::state_dir`] names one), its own CA and RSA keys, so many
//! run at once in one process (`cargo test`'s threads) or in many (nextest). The same lab from
//! any language: `lab up --json` prints [`Lab::json`]'s line (docs/embedding.md).

#![deny(missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What went wrong starting or switching a lab, in words.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err(e: impl std::fmt::Display) -> Error {
    Error(e.to_string())
}

/// The attribute that ties a synced user to its AD object (Connect's sourceAnchor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceAnchor {
    /// objectGUID (Connect's default before 1.1.524; the lab's default).
    ObjectGuid,
    /// mS-DS-ConsistencyGuid, which Connect writes on each synced user (a copy of its
    /// objectGUID); Connect's default since 1.1.524.
    ConsistencyGuid,
}

/// How to start a lab: [`LabConfig::testlab`], then the builder's choices — the same as
/// `lab up`'s flags.
///
/// ```
/// use hybrid_lab::{LabConfig, SourceAnchor};
///
/// let cfg = LabConfig::testlab()
///     .seed(7)
///     .source_anchor(SourceAnchor::ConsistencyGuid)
///     .sync_ou("OU=Lab Users,DC=testlab,DC=example");
/// # let _ = cfg;
/// ```
#[derive(Clone, Debug)]
pub struct LabConfig {
    inner: labkit::LabConfig,
    /// None: a temporary directory, removed when the lab is dropped.
    state_dir: Option<PathBuf>,
}

impl LabConfig {
    /// The built-in testlab domain (`testlab.example`, its users in `OU=Lab Users`, synced to
    /// the tenant), the writeback engine onboarded (writeback on in both places, as at the
    /// end of Microsoft's Test Lab Guide), seed 1, a frozen clock at the lab epoch that moves
    /// only through [`LabClock::advance`], any free ports on 127.0.0.1, a temporary state
    /// directory.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab();
    /// # let _ = cfg;
    /// ```
    pub fn testlab() -> LabConfig {
        let mut inner = labkit::LabConfig::ephemeral(PathBuf::new());
        inner.engine = true;
        LabConfig { inner, state_dir: None }
    }

    /// Seeds every generated value (GUIDs, the tenant id): the same seed gives the same lab.
    /// Keys and other secrets are never derived from it.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().seed(42);
    /// # let _ = cfg;
    /// ```
    pub fn seed(mut self, seed: u64) -> LabConfig {
        self.inner.seed = seed;
        self
    }

    /// A clock that runs with the wall clock (from now), as `lab up` without
    /// `--frozen-clock`; [`LabClock::advance`] still moves it on.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().running_clock();
    /// # let _ = cfg;
    /// ```
    pub fn running_clock(mut self) -> LabConfig {
        self.inner.clock = clock::Clock::running();
        self
    }

    /// No writeback engine (`--no-engine`): the tenant answers as Entra does with no Connect
    /// server — SSPR_0010 for a synced user's reset until writeback is enabled.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().no_engine();
    /// # let _ = cfg;
    /// ```
    pub fn no_engine(mut self) -> LabConfig {
        self.inner.engine = false;
        self
    }

    /// Synced users sign in with pass-through authentication (`--sign-in pta`): Connect's
    /// authentication agent installed beside the engine, every synced user's password
    /// checked against AD at sign-in (docs/pta.md). Needs the engine.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().pass_through_authentication(1)).await?;
    /// assert!(lab.json().contains(r#""sign_in":"passThroughAuthentication""#));
    /// assert_eq!(lab.pta_agents(), ["CONNECT1", "PTA2"]);
    /// # Ok(())
    /// # }
    /// ```
    /// `standalone` more agents beside Connect's (`--pta-agents N`; at most 39).
    pub fn pass_through_authentication(mut self, standalone: usize) -> LabConfig {
        self.inner.sign_in = labkit::SignInMethod::PassThroughAuthentication;
        self.inner.pta_agents = standalone;
        self
    }

    /// Microsoft Entra Cloud Sync's provisioning agent (`--agent cloud-sync` / `both`):
    /// `beside_connect` false puts it in Connect's place (the same users), true runs it beside
    /// Connect's engine, provisioning User6 in `OU=Cloud Sync Users` (docs/writeback.md).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().cloud_sync(true)).await?;
    /// assert!(lab.json().contains(r#""gmsa":"CN=provAgentgMSA,CN=Managed Service Accounts,DC=testlab,DC=example""#));
    /// assert!(lab.cloud_sync().is_some() && lab.engine().is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn cloud_sync(mut self, beside_connect: bool) -> LabConfig {
        self.inner.sync_agents = if beside_connect { labkit::SyncAgents::Both } else { labkit::SyncAgents::CloudSync };
        self
    }

    /// `n` domain controllers (`--dcs N`, 1–8): DC1 holds the PDC emulator role, the others
    /// are replicas on ports of their own, replicating every 15 s of the lab clock
    /// ([`Adds::replicate`] runs it now). [`Adds::domain_controllers`] lists them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine().domain_controllers(2)).await?;
    /// let dcs = lab.adds().domain_controllers();
    /// assert_eq!(dcs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["DC1", "DC2"]);
    /// assert!(dcs[0].pdc && dcs[1].ldaps_url != dcs[0].ldaps_url);
    /// assert!(lab.json().contains(r#""name":"DC2""#));
    /// # Ok(())
    /// # }
    /// ```
    pub fn domain_controllers(mut self, n: usize) -> LabConfig {
        self.inner.dcs = n;
        self
    }

    /// A second forest, fabrikam.example (`--forests 2`), and/or a child domain in testlab's,
    /// child.testlab.example (`--child-domain`), each with its own DCs and users;
    /// [`Adds::domains`] lists them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine().other_domains(true, true)).await?;
    /// let names: Vec<String> = lab.adds().domains().iter().map(|d| d.domain.clone()).collect();
    /// assert_eq!(names, ["testlab.example", "fabrikam.example", "child.testlab.example"]);
    /// assert_eq!(lab.adds().domains()[2].forest, "testlab.example");
    /// assert_eq!(lab.adds().domains()[1].dcs[0].name, "FDC1");
    /// # Ok(())
    /// # }
    /// ```
    pub fn other_domains(mut self, second_forest: bool, child_domain: bool) -> LabConfig {
        self.inner.forests = if second_forest { 2 } else { 1 };
        self.inner.child_domain = child_domain;
        self
    }

    /// Before Connect's first sync cycle (`--unsynced`): the tenant holds only its
    /// cloud-only accounts until [`EngineSwitches::sync`] brings the on-premises users.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().unsynced();
    /// # let _ = cfg;
    /// ```
    pub fn unsynced(mut self) -> LabConfig {
        self.inner.presynced = false;
        self
    }

    /// Seeds the AD DS from LDIF text (on top of the built-in domain objects) instead of the
    /// built-in users (`--adds-ldif`); `name` is what errors point at (`name:line: …`).
    ///
    /// ```
    /// let ldif = "dn: OU=Staff,DC=testlab,DC=example\nobjectClass: organizationalUnit\n";
    /// let cfg = hybrid_lab::LabConfig::testlab().no_engine().adds_ldif("staff.ldif", ldif);
    /// # let _ = cfg;
    /// ```
    pub fn adds_ldif(mut self, name: impl Into<String>, text: impl Into<String>) -> LabConfig {
        self.inner.adds_ldif = Some((name.into(), text.into()));
        self
    }

    /// The sourceAnchor Connect uses (`--source-anchor`).
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().source_anchor(hybrid_lab::SourceAnchor::ConsistencyGuid);
    /// # let _ = cfg;
    /// ```
    pub fn source_anchor(mut self, anchor: SourceAnchor) -> LabConfig {
        self.inner.source_anchor = match anchor {
            SourceAnchor::ObjectGuid => writeback::SourceAnchor::ObjectGuid,
            SourceAnchor::ConsistencyGuid => writeback::SourceAnchor::ConsistencyGuid,
        };
        self
    }

    /// An OU (its DN) that directory sync covers; call again for more (`--sync-ou`). Without
    /// any: `OU=Lab Users` in the built-in domain, the whole domain for one from LDIF.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().sync_ou("OU=Lab Users,DC=testlab,DC=example");
    /// # let _ = cfg;
    /// ```
    pub fn sync_ou(mut self, dn: impl Into<String>) -> LabConfig {
        self.inner.sync_scope.get_or_insert_with(Vec::new).push(dn.into());
        self
    }

    /// Keep the lab's files (its CA certificate `ca.pem`, its keys) in this directory, which
    /// outlives the lab; a lab started again there keeps its keys.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().state_dir("target/my-lab");
    /// # let _ = cfg;
    /// ```
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> LabConfig {
        self.state_dir = Some(dir.into());
        self
    }

    /// The LDAP listener's address (StartTLS offered); default `127.0.0.1:0`, any free port.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().ldap_addr("127.0.0.1:0".parse().unwrap());
    /// # let _ = cfg;
    /// ```
    pub fn ldap_addr(mut self, addr: SocketAddr) -> LabConfig {
        self.inner.ldap = addr;
        self
    }

    /// The LDAPS listener's address; default any free port on 127.0.0.1.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().ldaps_addr("127.0.0.1:0".parse().unwrap());
    /// # let _ = cfg;
    /// ```
    pub fn ldaps_addr(mut self, addr: SocketAddr) -> LabConfig {
        self.inner.ldaps = addr;
        self
    }

    /// The tenant's HTTPS listener's address (OIDC, tokens, Graph, the pages); default any
    /// free port on 127.0.0.1.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().https_addr("127.0.0.1:0".parse().unwrap());
    /// # let _ = cfg;
    /// ```
    pub fn https_addr(mut self, addr: SocketAddr) -> LabConfig {
        self.inner.https = addr;
        self
    }

    /// The tenant's plain HTTP listener's address; default any free port on 127.0.0.1.
    ///
    /// ```
    /// let cfg = hybrid_lab::LabConfig::testlab().http_addr("127.0.0.1:0".parse().unwrap());
    /// # let _ = cfg;
    /// ```
    pub fn http_addr(mut self, addr: SocketAddr) -> LabConfig {
        self.inner.http = addr;
        self
    }
}

/// A seeded account, as [`Lab::users`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// sAMAccountName; empty for a cloud-only account.
    pub sam: String,
    /// userPrincipalName (the tenant's sign-in name).
    pub upn: String,
    /// The AD object's distinguished name; empty for a cloud-only account.
    pub dn: String,
    /// Its password, where the lab knows it (not for users from LDIF given only a hash).
    pub password: Option<String>,
    /// What the account is there for (`locked out`, `protected: adminCount=1`, …).
    pub about: String,
    /// Has an account in the tenant.
    pub cloud: bool,
    /// The tenant's account is the synced twin of the AD account (writeback applies).
    pub synced: bool,
}

/// A running lab. Dropping it stops everything (listeners, engine) and removes its temporary
/// state directory; [`Lab::stop`] does the same and waits for it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), hybrid_lab::Error> {
/// let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab()).await?;
/// println!("{}", lab.json());
/// lab.stop().await;
/// # Ok(())
/// # }
/// ```
pub struct Lab {
    // (declared first: dropped first, so that the lab stops before its directory goes)
    inner: labkit::Lab,
    users: Vec<User>,
    ca_pem: String,
    json: String,
    _temp: Option<tempfile::TempDir>,
}

impl Lab {
    /// Starts a lab (a few milliseconds: no key is made, the RSA keys are the OS user's, made
    /// once and kept in the user's cache directory, see docs/security.md) and returns once
    /// every listener takes connections and the engine is onboarded and linked.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// # drop(lab);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(cfg: LabConfig) -> Result<Lab, Error> {
        let LabConfig { mut inner, state_dir } = cfg;
        let temp = match state_dir {
            Some(dir) => {
                inner.state_dir = dir;
                None
            }
            None => {
                let t = tempfile::Builder::new().prefix("hybrid-lab-").tempdir().map_err(|e| err(format!("a state directory: {e}")))?;
                inner.state_dir = t.path().to_path_buf();
                Some(t)
            }
        };
        let lab = labkit::Lab::start(inner).await.map_err(|e| err(format!("{e:#}")))?;
        let ca_pem =
            std::fs::read_to_string(&lab.info.adds.ca_cert).map_err(|e| err(format!("{}: {e}", lab.info.adds.ca_cert.display())))?;
        let json = serde_json::to_string(&lab.info).map_err(err)?;
        let users = lab
            .info
            .users
            .iter()
            .map(|u| User {
                sam: u.sam.clone(),
                upn: u.upn.clone(),
                dn: u.dn.clone(),
                password: u.password.clone(),
                about: u.about.clone(),
                cloud: u.cloud,
                synced: u.synced,
            })
            .collect();
        Ok(Lab { inner: lab, users, ca_pem, json, _temp: temp })
    }

    /// The AD DS: its endpoints and administrator, and its switches.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.adds().base_dn(), "DC=testlab,DC=example");
    /// # Ok(())
    /// # }
    /// ```
    pub fn adds(&self) -> Adds<'_> {
        Adds { lab: self }
    }

    /// The tenant: its endpoints, application and Global Administrator.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// let authority = lab.tenant().authority();
    /// assert!(authority.ends_with(lab.tenant().tenant_id()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn tenant(&self) -> Tenant<'_> {
        Tenant { info: &self.inner.info.tenant }
    }

    /// Every seeded account: the AD users (with their twins in the tenant where synced) and
    /// the tenant's cloud-only accounts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.users().iter().any(|u| u.synced && u.password.is_some()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// One account by sAMAccountName or userPrincipalName (either case).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.user("user1@testlab.example"), lab.user("User1"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| (!u.sam.is_empty() && u.sam.eq_ignore_ascii_case(name)) || u.upn.eq_ignore_ascii_case(name))
    }

    /// The lab's one clock: AD's pwdLastSet and lockout, the tenant's tokens and SSPR codes,
    /// the engine's sync schedule.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// let before = lab.clock().now();
    /// lab.clock().advance(std::time::Duration::from_secs(3600)).await;
    /// assert_eq!(lab.clock().now().duration_since(before).unwrap().as_secs(), 3600);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clock(&self) -> LabClock<'_> {
        LabClock { lab: &self.inner }
    }

    /// The writeback engine's switches; None when the lab runs without one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab()).await?;
    /// let engine = lab.engine().expect("testlab runs one");
    /// assert!(engine.is_running());
    /// # Ok(())
    /// # }
    /// ```
    pub fn engine(&self) -> Option<EngineSwitches<'_>> {
        self.inner.engine.as_ref().map(|e| EngineSwitches { engine: e })
    }

    /// Cloud Sync's provisioning agent's switches (stop, start, delays, its trace log), when
    /// the lab runs one ([`LabConfig::cloud_sync`]); with Cloud Sync alone, [`Lab::engine`]
    /// is the same agent.
    pub fn cloud_sync(&self) -> Option<EngineSwitches<'_>> {
        self.inner.cloud_sync.as_ref().map(|e| EngineSwitches { engine: e })
    }

    /// The authentication agents' machine names, Connect's first (`CONNECT1`, `PTA2`, …);
    /// empty unless the lab runs pass-through authentication or standalone agents.
    pub fn pta_agents(&self) -> Vec<&str> {
        self.inner.info.pta_agents.iter().map(|a| a.machine_name.as_str()).collect()
    }

    /// Every endpoint and credential as one JSON line: what `lab up --json` prints for the
    /// same choices (docs/embedding.md describes its fields).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// let v: serde_json::Value = serde_json::from_str(lab.json()).unwrap();
    /// assert_eq!(v["adds"]["ldaps"], lab.adds().ldaps_url());
    /// # Ok(())
    /// # }
    /// ```
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The CA certificate (PEM) that the lab's LDAPS and HTTPS certificates chain to.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A rustls client configuration that trusts the lab's CA and nothing else: what `ldap3`
    /// with its `tls-rustls-ring` feature takes (`LdapConnSettings::set_config`) for LDAPS and
    /// StartTLS. With ldap3's default TLS (native-tls), trust [`Lab::ca_pem`] instead
    /// (`native_tls::Certificate::from_pem`; examples/consumer does): the lab's crates build
    /// ldap3 without TLS, so either of its back ends can be yours.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// let settings = ldap3::LdapConnSettings::new().set_config(lab.tls_client_config());
    /// let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(settings, lab.adds().ldaps_url()).await?;
    /// ldap3::drive!(conn);
    /// let user1 = lab.user("User1").unwrap();
    /// ldap.simple_bind(&user1.dn, user1.password.as_deref().unwrap()).await?.success()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn tls_client_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()).flatten() {
            let _ = roots.add(c);
        }
        #[allow(deprecated)] // ring on purpose: docs/security.md, "ring, not AWS-LC, for TLS"
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        std::sync::Arc::new(cfg)
    }

    /// Stops the lab and waits for its listeners to close (at most 1.5 s).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// lab.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop(self) {
        let Lab { inner, _temp, .. } = self;
        inner.stop().await;
        drop(_temp);
    }
}

/// One lab for every test of a test binary, started by the first test that asks for it and
/// running until the process ends, on a runtime of its own: a `#[tokio::test]` has a runtime
/// per test, and a lab started on one would stop with that test.
///
/// ```
/// use hybrid_lab::{LabConfig, Shared};
///
/// static LAB: Shared = Shared::new(|| LabConfig::testlab());
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), hybrid_lab::Error> {
/// // in each test (async or not):
/// let lab = LAB.get()?;
/// assert!(lab.adds().ldaps_url().starts_with("ldaps://127.0.0.1:"));
/// assert!(std::ptr::eq(lab, LAB.get()?), "the same lab for every caller");
/// # Ok(())
/// # }
/// ```
///
/// Tests that share a lab share its state: give each its own users or objects, or leave
/// what they change as they found it. A test that moves the clock or throws a switch wants
/// a lab of its own ([`Lab::start`]).
pub struct Shared {
    config: fn() -> LabConfig,
    lab: std::sync::OnceLock<Result<(Lab, tokio::runtime::Runtime), String>>,
}

impl Shared {
    /// A shared lab of the configuration `config` gives (made on first use).
    pub const fn new(config: fn() -> LabConfig) -> Shared {
        Shared { config, lab: std::sync::OnceLock::new() }
    }

    /// The lab, started on first use (callers at the same time wait for that one start).
    /// A start that failed fails every caller with the same error.
    pub fn get(&self) -> Result<&Lab, Error> {
        let started = self.lab.get_or_init(|| {
            let config = self.config;
            // a thread of its own: blocking on a runtime inside a caller's runtime panics
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("hybrid-lab-shared")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("the shared lab's runtime: {e}"))?;
                let lab = rt.block_on(Lab::start(config())).map_err(|e| e.0)?;
                Ok((lab, rt))
            })
            .join()
            .unwrap_or_else(|_| Err("the shared lab's start panicked".into()))
        });
        started.as_ref().map(|(lab, _)| lab).map_err(|e| Error(e.clone()))
    }
}

/// The AD DS of a lab ([`Lab::adds`]).
pub struct Adds<'a> {
    lab: &'a Lab,
}

fn dcs(list: &[labkit::DcInfo]) -> Vec<DomainController> {
    list.iter()
        .map(|d| DomainController { name: d.name.clone(), ldap_url: d.ldap.clone(), ldaps_url: d.ldaps.clone(), pdc: d.pdc })
        .collect()
}

/// One domain of the lab ([`Adds::domains`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    /// `fabrikam.example`.
    pub domain: String,
    /// `FABRIKAM`.
    pub netbios: String,
    /// `DC=fabrikam,DC=example`.
    pub base_dn: String,
    /// Its forest root's DNS name.
    pub forest: String,
    /// Its domain controllers, the PDC emulator first.
    pub dcs: Vec<DomainController>,
    /// Its built-in Administrator's DN.
    pub admin_dn: String,
    /// And password.
    pub admin_password: String,
}

/// One domain controller of the lab's domain ([`Adds::domain_controllers`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainController {
    /// `DC1`, `DC2`, …
    pub name: String,
    /// `ldap://127.0.0.1:PORT`.
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:PORT`.
    pub ldaps_url: String,
    /// Holds the PDC emulator role.
    pub pdc: bool,
}

/// How the domain controller answers ([`Adds::set_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcState {
    /// Answering.
    Up,
    /// Not answering: open connections are dropped, new ones closed at once (the engine
    /// then reports 33006 and the tenant SSPR_0030-style failures).
    Down,
    /// TLS handshakes present a certificate from a CA clients were not given.
    UntrustedCertificate,
}

/// A password-related right in AD, as ADUC's delegation names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Right {
    /// "Reset Password" (User-Force-Change-Password): what writeback of a reset needs.
    ResetPassword,
    /// "Change Password" (User-Change-Password): AD grants it to Everyone on every user.
    ChangePassword,
    /// Write lockoutTime: what writeback's unlock needs.
    WriteLockoutTime,
    /// Write pwdLastSet: what "must change at next logon" needs.
    WritePwdLastSet,
    /// "Unexpire Password".
    UnexpirePassword,
}

impl Right {
    fn ad(self) -> ad_ds::access::Right {
        use ad_ds::access::Right as R;
        match self {
            Right::ResetPassword => R::ResetPassword,
            Right::ChangePassword => R::ChangePassword,
            Right::WriteLockoutTime => R::WriteLockoutTime,
            Right::WritePwdLastSet => R::WritePwdLastSet,
            Right::UnexpirePassword => R::UnexpirePassword,
        }
    }
}

impl<'a> Adds<'a> {
    fn info(&self) -> &'a labkit::AddsInfo {
        &self.lab.inner.info.adds
    }

    fn dc(&self) -> &'a ad_ds::DomainController {
        self.lab.inner.adds.as_deref().expect("the fixture runs the built-in AD DS")
    }

    /// `ldap://127.0.0.1:PORT` (StartTLS offered; AD refuses password writes without it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.adds().ldap_url().starts_with("ldap://127.0.0.1:"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn ldap_url(&self) -> &'a str {
        &self.info().ldap
    }

    /// Every domain controller of the domain, DC1 (the PDC emulator) first.
    pub fn domain_controllers(&self) -> Vec<DomainController> {
        dcs(&self.info().dcs)
    }

    /// Every domain of the lab, the testlab first.
    pub fn domains(&self) -> Vec<Domain> {
        self.info()
            .domains
            .iter()
            .map(|d| Domain {
                domain: d.domain.clone(),
                netbios: d.netbios.clone(),
                base_dn: d.base_dn.clone(),
                forest: d.forest.clone(),
                dcs: dcs(&d.dcs),
                admin_dn: d.admin_dn.clone(),
                admin_password: d.admin_password.clone(),
            })
            .collect()
    }

    /// `repadmin /syncall`: every DC pulls every other's changes now. Returns how many objects
    /// the DCs took in all (0 in a lab with one DC).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine().domain_controllers(2)).await?;
    /// assert_eq!(lab.adds().replicate(), 0, "nothing changed since DC2 was made");
    /// # Ok(())
    /// # }
    /// ```
    pub fn replicate(&self) -> usize {
        self.lab.inner.topologies.iter().flat_map(|t| t.replicate_now()).map(|p| p.objects).sum()
    }

    /// `ldaps://127.0.0.1:PORT`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// let (ldap, ldaps) = (lab.adds().ldap_url(), lab.adds().ldaps_url());
    /// assert_ne!(ldap.rsplit(':').next(), ldaps.rsplit(':').next());
    /// # Ok(())
    /// # }
    /// ```
    pub fn ldaps_url(&self) -> &'a str {
        &self.info().ldaps
    }

    /// The CA certificate (PEM) the LDAPS certificate chains to (the same as [`Lab::ca_pem`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.adds().ca_pem(), lab.ca_pem());
    /// # Ok(())
    /// # }
    /// ```
    pub fn ca_pem(&self) -> &'a str {
        &self.lab.ca_pem
    }

    /// The CA certificate's file (`ca.pem` in the state directory), for tools that take a
    /// path (`LDAPTLS_CACERT`, `REQUESTS_CA_BUNDLE`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.adds().ca_path().ends_with("ca.pem"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn ca_path(&self) -> &'a Path {
        &self.info().ca_cert
    }

    /// The domain's DN, `DC=testlab,DC=example`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.user("User1").unwrap().dn.ends_with(lab.adds().base_dn()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn base_dn(&self) -> &'a str {
        &self.info().base_dn
    }

    /// The domain's DNS name, `testlab.example` (the implicit UPN suffix).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.adds().domain(), "testlab.example");
    /// # Ok(())
    /// # }
    /// ```
    pub fn domain(&self) -> &'a str {
        &self.info().domain
    }

    /// The domain's NetBIOS name, `TESTLAB` (binds as `TESTLAB\User1`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.adds().netbios(), "TESTLAB");
    /// # Ok(())
    /// # }
    /// ```
    pub fn netbios(&self) -> &'a str {
        &self.info().netbios
    }

    /// The domain Administrator's DN.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.adds().admin_dn().starts_with("CN=Administrator,"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn admin_dn(&self) -> &'a str {
        &self.info().admin_dn
    }

    /// The domain Administrator's password.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(!lab.adds().admin_password().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn admin_password(&self) -> &'a str {
        &self.info().admin_password
    }

    /// Makes the domain controller answer as `state` says, from the next connection or
    /// message on (a DC outage, a certificate clients do not trust).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// use hybrid_lab::DcState;
    /// lab.adds().set_state(DcState::Down);
    /// assert_eq!(lab.adds().state(), DcState::Down);
    /// lab.adds().set_state(DcState::Up);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_state(&self, state: DcState) {
        self.dc().faults.set_state(match state {
            DcState::Up => ad_ds::DcState::Up,
            DcState::Down => ad_ds::DcState::Down,
            DcState::UntrustedCertificate => ad_ds::DcState::UntrustedCertificate,
        });
    }

    /// How the domain controller answers now.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.adds().state(), hybrid_lab::DcState::Up);
    /// # Ok(())
    /// # }
    /// ```
    pub fn state(&self) -> DcState {
        match self.dc().faults.state() {
            ad_ds::DcState::Up => DcState::Up,
            ad_ds::DcState::Down => DcState::Down,
            ad_ds::DcState::UntrustedCertificate => DcState::UntrustedCertificate,
        }
    }

    /// The connector account's DN (Connect's AD DS account, `MSOL_…`), which writes
    /// passwords back; None for a directory from LDIF without one.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.adds().connector_dn().unwrap().starts_with("CN=MSOL_"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn connector_dn(&self) -> Option<String> {
        let d = self.dc().directory.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        d.by_sam(labkit::testlab::CONNECTOR).map(|e| e.dn.to_string())
    }

    /// Whether the connector account holds `right` over the whole domain.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.adds().connector_holds(hybrid_lab::Right::ResetPassword));
    /// # Ok(())
    /// # }
    /// ```
    pub fn connector_holds(&self, right: Right) -> bool {
        let connector = self.connector_dn();
        let d = self.dc().directory.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = d.base_dn().to_string();
        d.is_granted(connector.as_deref(), right.ad(), &root).unwrap_or(false)
    }

    /// Grants the connector account `right` over the whole domain (ADUC's delegation wizard).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// use hybrid_lab::Right;
    /// lab.adds().revoke_from_connector(Right::ResetPassword)?;
    /// lab.adds().grant_to_connector(Right::ResetPassword)?;
    /// assert!(lab.adds().connector_holds(Right::ResetPassword));
    /// # Ok(())
    /// # }
    /// ```
    pub fn grant_to_connector(&self, right: Right) -> Result<(), Error> {
        let connector = self.connector_dn().ok_or_else(|| err("the directory has no connector account"))?;
        let mut d = self.dc().directory.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = d.base_dn().to_string();
        d.grant(Some(&connector), right.ad(), &root).map_err(err)
    }

    /// Takes `right` over the whole domain away from the connector account: writeback then
    /// fails as it does when Connect's account lacks it (SSPR_0029 for a reset).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// lab.adds().revoke_from_connector(hybrid_lab::Right::ResetPassword)?;
    /// assert!(!lab.adds().connector_holds(hybrid_lab::Right::ResetPassword));
    /// # Ok(())
    /// # }
    /// ```
    pub fn revoke_from_connector(&self, right: Right) -> Result<(), Error> {
        let connector = self.connector_dn().ok_or_else(|| err("the directory has no connector account"))?;
        let mut d = self.dc().directory.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = d.base_dn().to_string();
        d.revoke(Some(&connector), right.ad(), &root).map(|_| ()).map_err(err)
    }

    /// Denies `right` to Everyone on the object `dn` and below: ADUC's "User cannot change
    /// password" is `deny_everyone(Right::ChangePassword, user_dn)`. A deny wins over any
    /// allow.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// let user1 = lab.user("User1").unwrap();
    /// lab.adds().deny_everyone(hybrid_lab::Right::ChangePassword, &user1.dn)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn deny_everyone(&self, right: Right, dn: &str) -> Result<(), Error> {
        let mut d = self.dc().directory.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        d.deny(None, right.ad(), dn).map_err(err)
    }
}

/// The tenant of a lab ([`Lab::tenant`]).
pub struct Tenant<'a> {
    info: &'a labkit::TenantInfo,
}

impl<'a> Tenant<'a> {
    /// The HTTPS base, `https://localhost:PORT` (its certificate names localhost and
    /// 127.0.0.1).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.tenant().https_url().starts_with("https://localhost:"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn https_url(&self) -> &'a str {
        &self.info.https
    }

    /// The plain HTTP base (no passwords or tokens should cross it; curl in a hurry).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.tenant().http_url().starts_with("http://127.0.0.1:"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_url(&self) -> &'a str {
        &self.info.http
    }

    /// MSAL's authority: `https://localhost:PORT/{tenant id}`; OIDC discovery is under it at
    /// `/v2.0/.well-known/openid-configuration`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.tenant().authority().starts_with(lab.tenant().https_url()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn authority(&self) -> &'a str {
        &self.info.authority
    }

    /// The token endpoint (`{authority}/oauth2/v2.0/token`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.tenant().token_url().ends_with("/oauth2/v2.0/token"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.info.authority)
    }

    /// Graph v1.0's base: `{graph}/users`, `{graph}/users/{id}/authentication/methods/…`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.tenant().graph_url(), format!("{}/v1.0", lab.tenant().https_url()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn graph_url(&self) -> &'a str {
        &self.info.graph
    }

    /// The tenant id (a GUID, from the lab's seed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.tenant().tenant_id().len(), 36);
    /// # Ok(())
    /// # }
    /// ```
    pub fn tenant_id(&self) -> &'a str {
        &self.info.tenant_id
    }

    /// The lab application's client id (public client flows and client credentials).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert_eq!(lab.tenant().client_id().len(), 36);
    /// # Ok(())
    /// # }
    /// ```
    pub fn client_id(&self) -> &'a str {
        &self.info.client_id
    }

    /// The lab application's client secret (client credentials: application permissions).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(!lab.tenant().client_secret().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn client_secret(&self) -> &'a str {
        &self.info.client_secret
    }

    /// The tenant's Global Administrator (a cloud-only account).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.tenant().admin_upn().ends_with(".onmicrosoft.com"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn admin_upn(&self) -> &'a str {
        &self.info.admin_upn
    }

    /// The Global Administrator's password.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(!lab.tenant().admin_password().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn admin_password(&self) -> &'a str {
        &self.info.admin_password
    }
}

/// The lab's clock ([`Lab::clock`]).
pub struct LabClock<'a> {
    lab: &'a labkit::Lab,
}

impl LabClock<'_> {
    /// The lab's time now.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// let (a, b) = (lab.clock().now(), lab.clock().now());
    /// assert_eq!(a, b, "testlab's clock is frozen");
    /// # Ok(())
    /// # }
    /// ```
    pub fn now(&self) -> SystemTime {
        self.lab.clock.now().into()
    }

    /// The lab's time as AD writes it (FILETIME: 100 ns since 1601), as in pwdLastSet.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// assert!(lab.clock().filetime() > 116_444_736_000_000_000, "after 1970");
    /// # Ok(())
    /// # }
    /// ```
    pub fn filetime(&self) -> i64 {
        self.lab.clock.filetime()
    }

    /// Moves the clock on by `by`, then runs what Connect's scheduler finds due (a delta sync
    /// cycle every 30 minutes, password hash sync every 2), as a lab's scenarios do.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().no_engine()).await?;
    /// lab.clock().advance(std::time::Duration::from_secs(31 * 60)).await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn advance(&self, by: Duration) {
        self.lab.clock.advance(by);
        if let Some(e) = &self.lab.engine {
            e.run_due().await;
        }
        // Cloud Sync's agent beside Connect's engine keeps its own two-minute schedule
        if let Some(a) = self.lab.cloud_sync.as_ref().filter(|a| self.lab.engine.as_ref().is_none_or(|e| e.id() != a.id())) {
            a.run_due().await;
        }
    }
}

/// The writeback engine's switches ([`Lab::engine`]): what an operator does on the Connect
/// server.
pub struct EngineSwitches<'a> {
    engine: &'a writeback::Engine,
}

/// One event in the engine's event log (Application log: PasswordResetService, ADSync,
/// Directory Synchronization).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event ID (31005, 33004, 6329, …).
    pub id: u32,
    /// The event source.
    pub source: String,
    /// The message.
    pub message: String,
}

/// What one sync cycle did ([`EngineSwitches::sync`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// Users created in the tenant.
    pub added: usize,
    /// Users updated.
    pub updated: usize,
    /// Users deleted.
    pub deleted: usize,
    /// Password hashes sent.
    pub passwords: usize,
    /// Export errors, as `code: DN: message`.
    pub errors: Vec<String>,
}

impl EngineSwitches<'_> {
    /// Whether the service runs (`Get-Service ADSync`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab()).await?;
    /// assert!(lab.engine().unwrap().is_running());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_running(&self) -> bool {
        self.engine.running()
    }

    /// Stops the service (31016) and waits for its relay link to close: the tenant then
    /// answers writeback requests as Entra does with the service unreachable (SSPR_0030).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab()).await?;
    /// let engine = lab.engine().unwrap();
    /// engine.stop().await;
    /// assert!(!engine.is_running());
    /// engine.start().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stop(&self) {
        self.engine.stop();
        self.engine.wait_disconnected(Duration::from_secs(10)).await;
    }

    /// Starts the service again (31015) and waits for its relay link (at most 10 s).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab()).await?;
    /// lab.engine().unwrap().start().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(&self) -> Result<(), Error> {
        self.engine.resume();
        if self.engine.wait_connected(Duration::from_secs(10)).await { Ok(()) } else { Err(err("the engine found no relay link in 10 s")) }
    }

    /// A sync cycle now: `Start-ADSyncSyncCycle -PolicyType Initial` (`initial`) or `Delta`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().unsynced()).await?;
    /// let report = lab.engine().unwrap().sync(true).await?;
    /// assert!(report.added > 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn sync(&self, initial: bool) -> Result<SyncReport, Error> {
        let policy = if initial { relay::PolicyType::Initial } else { relay::PolicyType::Delta };
        let r = self.engine.sync(policy).await.map_err(err)?;
        Ok(SyncReport {
            added: r.added,
            updated: r.updated,
            deleted: r.deleted,
            passwords: r.passwords,
            errors: r.errors.iter().map(|e| format!("{}: {}: {}", e.code, e.distinguished_name, e.message)).collect(),
        })
    }

    /// The engine's event log, oldest first (onboarding's 31004 → 31017 → 31018 → 31005,
    /// each writeback's 31001…/33004…, sync's 6329 and 656/657).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab()).await?;
    /// assert!(lab.engine().unwrap().events().iter().any(|e| e.id == 31005));
    /// # Ok(())
    /// # }
    /// ```
    pub fn events(&self) -> Vec<Event> {
        self.engine.events().into_iter().map(|e| Event { id: e.id, source: e.source.to_string(), message: e.message }).collect()
    }

    /// Cloud Sync's agent trace, oldest first, as `component: message` lines (Microsoft
    /// publishes no event IDs for it; empty for Connect's engine, whose log is
    /// [`EngineSwitches::events`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), hybrid_lab::Error> {
    /// # let lab = hybrid_lab::Lab::start(hybrid_lab::LabConfig::testlab().cloud_sync(false)).await?;
    /// let agent = lab.cloud_sync().unwrap();
    /// assert!(agent.events().is_empty());
    /// assert!(agent.trace().iter().any(|l| l.starts_with("AgentService: Microsoft Entra Provisioning Agent service started")));
    /// # Ok(())
    /// # }
    /// ```
    pub fn trace(&self) -> Vec<String> {
        self.engine.agent_trace().into_iter().map(|l| format!("{}: {}", l.component, l.message)).collect()
    }
}
