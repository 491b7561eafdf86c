//! `lab-bench`: the measurements behind docs/benchmarks.md.
//!
//! - `load`: an LDAP load client (the `ldap3` crate) — simple binds/s or indexed equality
//!   searches/s over N concurrent connections for a fixed time, against any server, so
//!   the lab and OpenLDAP's slapd are measured by the same client;
//! - `gen`: LDIF with N users, in the lab's (AD) or slapd's (inetOrgPerson) shape;
//! - `import`: LDIF import time and resident memory for N users, in process;
//! - `lookup`: the cost of a sAMAccountName lookup at several directory sizes, in process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::{Parser, Subcommand, ValueEnum};
use rand::{Rng, SeedableRng};

// A directory is millions of small allocations; glibc's malloc spends a third of an import
// consolidating them (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Flavor {
    /// The lab's AD DS: OU=Load,DC=testlab,DC=example, sAMAccountName, unicodePwd.
    Ad,
    /// slapd: ou=people,dc=bench,dc=example, uid, userPassword.
    Openldap,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Op {
    Bind,
    Search,
    /// Admin resets (unicodePwd replace) of random users, over LDAPS (the lab only).
    Reset,
    /// Password changes (old and new) of each worker's own users, over LDAPS (the lab only).
    Change,
}

#[derive(clap::Args)]
struct LoadArgs {
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    flavor: Flavor,
    #[arg(long, value_enum)]
    op: Op,
    #[arg(long)]
    users: usize,
    #[arg(long, default_value_t = 1)]
    conns: usize,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// DN and password of the account searches run as.
    #[arg(long)]
    admin_dn: String,
    #[arg(long)]
    admin_password: String,
    /// CA certificate to trust for ldaps:// URLs.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    Gen {
        #[arg(long)]
        users: usize,
        #[arg(long, value_enum)]
        flavor: Flavor,
        /// For openldap: the userPassword value (e.g. an {SSHA} hash from slappasswd).
        #[arg(long, default_value = "")]
        hash: String,
    },
    Load(LoadArgs),
    Import {
        #[arg(long, default_value_t = 100_000)]
        users: usize,
    },
    Lookup {
        #[arg(long, value_delimiter = ',', default_values_t = vec![1_000, 10_000, 100_000])]
        sizes: Vec<usize>,
    },
    /// The tenant under load, in process: token issuance (password grant) and Graph
    /// `GET /users/{id}` over HTTPS with N concurrent clients.
    Tenant {
        #[arg(long, default_value_t = 16)]
        conns: usize,
        #[arg(long, default_value_t = 4)]
        seconds: u64,
    },
    /// Password sign-ins (the token endpoint's password grant) of N users at once, each its
    /// own synced user: password hash sync and pass-through authentication (Connect's agent
    /// and `agents` standalone ones, binding to the lab's DC) in alternating rounds of one
    /// lab, with `busy` spinning processes beside it.
    Pta {
        #[arg(long, default_value_t = 16)]
        conns: usize,
        #[arg(long, default_value_t = 4)]
        seconds: u64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value_t = 0)]
        agents: usize,
        #[arg(long, default_value_t = 0)]
        busy: usize,
    },
    /// How long `Lab::start` takes (both halves, listeners bound), N times in one process.
    Startup {
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// `lab up --json` as a user runs it: N starts back to back, each in a new empty state
    /// directory, timed from spawn to its JSON line, then killed; median, p95 and max, with
    /// `--busy K` processes spinning on the CPUs the whole time (CI's load). Then
    /// `Lab::start` in process, likewise.
    FreshStart {
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// The `lab` binary to start.
        #[arg(long, default_value = "target/release/lab")]
        lab: std::path::PathBuf,
        /// Busy processes beside the starts (one per core: both cores busy, as in CI).
        #[arg(long, default_value_t = 0)]
        busy: usize,
        /// Domain controllers each lab starts, per domain (`lab up --dcs N`).
        #[arg(long, default_value_t = 1)]
        dcs: usize,
        /// Forests (`lab up --forests N`: 2 adds fabrikam.example).
        #[arg(long, default_value_t = 1)]
        forests: usize,
        /// Run the busy processes in a session of their own, as `stress --cpu N` started
        /// from another terminal: Linux's autogroup then shares the CPUs between the two
        /// sessions, not between threads. By default they share the labs' session, as a CI
        /// run's other tests do (the harder load).
        #[arg(long)]
        busy_elsewhere: bool,
    },
    /// Burns a core until killed (the load `--busy` puts beside a measurement).
    #[command(hide = true)]
    Spin,
    /// SSPR resets of synced users written back through the relay and the engine to the
    /// AD DS: the reset request's latency (the gates are passed untimed) and resets/s.
    /// Directory sync and password hash sync: an initial cycle of N users from a tenant
    /// that holds none, then a delta of M changed users (display name and password).
    Sync {
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        changes: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    Writeback {
        #[arg(long, default_value_t = 16)]
        conns: usize,
        #[arg(long, default_value_t = 4)]
        seconds: u64,
        /// Synced users per connection (each connection cycles through its own).
        #[arg(long, default_value_t = 4)]
        users_per_conn: usize,
    },
    /// The scenario suite in one process, as `lab run` does: wall time per round, and each
    /// scenario's lab start-up and total time.
    Scenarios {
        #[arg(long, default_value = "scenarios")]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(short, long, default_value_t = 2)]
        jobs: usize,
    },
}

pub const PASSWORD: &str = "Load-Pass-123!";

fn user_dn(f: Flavor, i: usize) -> String {
    match f {
        Flavor::Ad => format!("CN=load{i},OU=Load,DC=testlab,DC=example"),
        Flavor::Openldap => format!("uid=load{i},ou=people,dc=bench,dc=example"),
    }
}

fn gen_ldif(users: usize, f: Flavor, hash: &str) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(users * 200);
    match f {
        Flavor::Ad => {
            let pw = ad_ds::password::unicode_pwd(PASSWORD);
            let pw = base64::engine::general_purpose::STANDARD.encode(&pw);
            s.push_str("dn: OU=Load,DC=testlab,DC=example\nobjectClass: organizationalUnit\n\n");
            for i in 0..users {
                let _ = write!(
                    s,
                    "dn: {}\nobjectClass: user\nsAMAccountName: load{i}\nuserPrincipalName: load{i}@testlab.example\nmail: load{i}@testlab.example\ndisplayName: Load User {i}\nuserAccountControl: 512\nunicodePwd:: {pw}\n\n",
                    user_dn(f, i)
                );
            }
        }
        Flavor::Openldap => {
            s.push_str("dn: dc=bench,dc=example\nobjectClass: dcObject\nobjectClass: organization\no: bench\ndc: bench\n\n");
            s.push_str("dn: ou=people,dc=bench,dc=example\nobjectClass: organizationalUnit\nou: people\n\n");
            for i in 0..users {
                let _ = write!(
                    s,
                    "dn: {}\nobjectClass: inetOrgPerson\nuid: load{i}\ncn: Load User {i}\nsn: User\nmail: load{i}@bench.example\nuserPassword: {hash}\n\n",
                    user_dn(f, i)
                );
            }
        }
    }
    s
}

/// A fresh password that passes AD's complexity rule for every load user: no digits (the
/// users' displayName tokens are "Load", "User" and their number), letters that spell
/// neither name.
fn unique_password(prefix: &str, worker: usize, n: usize) -> String {
    // Unique across runs too (the history remembers 24): the process id goes in.
    format!("{prefix}-{}-{}-{}!", letters(std::process::id() as usize), letters(worker), letters(n))
}

fn letters(mut x: usize) -> String {
    const LETTERS: &[u8] = b"bcdfghjkmnpqtvwxyz";
    let mut out = String::new();
    loop {
        out.push(LETTERS[x % LETTERS.len()] as char);
        x /= LETTERS.len();
        if x == 0 {
            return out;
        }
    }
}

/// Prints the first refusal, so a failing run says why.
fn report(r: &ldap3::LdapResult) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if r.rc != 0 {
        ONCE.call_once(|| eprintln!("first refusal: {} {}", r.rc, r.text.trim_end()));
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn directory_with(users: usize) -> Result<ad_ds::Directory> {
    directory_with_text(&gen_ldif(users, Flavor::Ad, ""))
}

async fn load(a: LoadArgs) -> Result<()> {
    let LoadArgs { url, flavor: f, op, users, conns, seconds, admin_dn, admin_password: admin_pw, ca } = a;
    let settings = match &ca {
        Some(ca) => {
            use rustls::pki_types::pem::PemObject;
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls::pki_types::CertificateDer::pem_file_iter(ca)? {
                roots.add(c?)?;
            }
            let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
            ldap3::LdapConnSettings::new().set_config(Arc::new(tls))
        }
        None => ldap3::LdapConnSettings::new(),
    };
    if op == Op::Change {
        // Changes right after one another: the bench domain waives the minimum age.
        let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(settings.clone(), &url).await?;
        ldap3::drive!(conn);
        ldap.simple_bind(&admin_dn, &admin_pw).await?.success()?;
        let zero = std::collections::HashSet::from(["0"]);
        ldap.modify("DC=testlab,DC=example", vec![ldap3::Mod::Replace("minPwdAge", zero)]).await?.success()?;
        ldap.unbind().await?;
    }
    let ops = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // Every worker sets up first (binds; for changes, resets its users to known passwords),
    // then all start the clock together.
    let start = Arc::new(tokio::sync::Barrier::new(conns));
    let mut tasks = Vec::new();
    for w in 0..conns {
        let (url, ops, errors, admin_dn, admin_pw) = (url.clone(), ops.clone(), errors.clone(), admin_dn.clone(), admin_pw.clone());
        let settings = settings.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            let (conn, mut ldap) = ldap3::LdapConnAsync::with_settings(settings, &url).await?;
            ldap3::drive!(conn);
            // change: this worker owns users w, w+conns, w+2·conns... and knows their passwords
            let mine: Vec<usize> = (w..users).step_by(conns).collect();
            let mut current: Vec<String> = Vec::new();
            let mut n = 0usize;
            if op != Op::Bind {
                ldap.simple_bind(&admin_dn, &admin_pw).await?.success()?;
            }
            if op == Op::Change {
                for (k, &i) in mine.iter().enumerate() {
                    let p = unique_password("Start", w, k);
                    let m =
                        ldap3::Mod::Replace(b"unicodePwd".to_vec(), std::collections::HashSet::from([ad_ds::password::unicode_pwd(&p)]));
                    ldap.modify(&user_dn(f, i), vec![m]).await?.success()?;
                    current.push(p);
                }
            }
            start.wait().await;
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let (base, attr) = match f {
                Flavor::Ad => ("DC=testlab,DC=example", "sAMAccountName"),
                Flavor::Openldap => ("dc=bench,dc=example", "uid"),
            };
            while Instant::now() < deadline {
                let i = rng.gen_range(0..users);
                let ok = match op {
                    Op::Bind => ldap.simple_bind(&user_dn(f, i), PASSWORD).await?.rc == 0,
                    Op::Search => {
                        let ldap3::SearchResult(rs, r) =
                            ldap.search(base, ldap3::Scope::Subtree, &format!("({attr}=load{i})"), vec!["cn"]).await?;
                        r.rc == 0 && rs.len() == 1
                    }
                    Op::Reset => {
                        n += 1;
                        let new = ad_ds::password::unicode_pwd(&unique_password("Reset", w, n));
                        let m = ldap3::Mod::Replace(b"unicodePwd".to_vec(), std::collections::HashSet::from([new]));
                        let r = ldap.modify(&user_dn(f, i), vec![m]).await?;
                        report(&r);
                        r.rc == 0
                    }
                    Op::Change => {
                        n += 1;
                        let k = n % mine.len();
                        let new = unique_password("Change", w, n);
                        let old = ad_ds::password::unicode_pwd(&current[k]);
                        let mods = vec![
                            ldap3::Mod::Delete(b"unicodePwd".to_vec(), std::collections::HashSet::from([old])),
                            ldap3::Mod::Add(b"unicodePwd".to_vec(), std::collections::HashSet::from([ad_ds::password::unicode_pwd(&new)])),
                        ];
                        let r = ldap.modify(&user_dn(f, mine[k]), mods).await?;
                        report(&r);
                        let ok = r.rc == 0;
                        if ok {
                            current[k] = new;
                        }
                        ok
                    }
                };
                if ok {
                    ops.fetch_add(1, Ordering::Relaxed)
                } else {
                    errors.fetch_add(1, Ordering::Relaxed)
                };
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let n = ops.load(Ordering::Relaxed);
    let e = errors.load(Ordering::Relaxed);
    if e > 0 {
        bail!("{e} operations failed");
    }
    println!("{:.0}", n as f64 / seconds as f64);
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Gen { users, flavor, hash } => print!("{}", gen_ldif(users, flavor, &hash)),
        Cmd::Load(args) => tokio::runtime::Runtime::new()?.block_on(load(args))?,
        Cmd::Import { users } => {
            // Five imports into fresh directories: this machine's timings vary by ±20% (and
            // the first run after a build is often the slowest), so report the median and
            // the best; memory from the first.
            let text = gen_ldif(users, Flavor::Ad, "");
            let mut times = Vec::new();
            let mut rss = None;
            let mut objects = 0;
            let mut parse_times = Vec::new();
            for _ in 0..5 {
                let before = rss_kib();
                let t = Instant::now();
                parse_times.push({
                    let p = Instant::now();
                    let n = ad_ds::ldif::parse(&text)?.len();
                    assert!(n > 0);
                    p.elapsed().as_secs_f64()
                });
                let t_import = Instant::now();
                let d = directory_with_text(&text)?;
                let _ = t;
                times.push(t_import.elapsed().as_secs_f64());
                let after = rss_kib();
                rss.get_or_insert(((after - before) / 1024, after / 1024));
                objects = d.len();
            }
            let (added, process) = rss.unwrap_or_default();
            parse_times.sort_by(f64::total_cmp);
            println!("  of which LDIF parsing alone: median {:.2} s", parse_times[2]);
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            let runs: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
            println!(
                "import of {users} users: median {:.2} s, best {:.2} s (runs {}), RSS +{added} MiB (process {process} MiB), {objects} objects",
                sorted[2],
                sorted[0],
                runs.join(" ")
            );
        }
        Cmd::Tenant { conns, seconds } => tokio::runtime::Runtime::new()?.block_on(tenant_load(conns, seconds))?,
        Cmd::Startup { runs } => tokio::runtime::Runtime::new()?.block_on(startup(runs))?,
        Cmd::Pta { conns, seconds, rounds, agents, busy } => {
            let _load = Busy::start(busy, false)?;
            tokio::runtime::Runtime::new()?.block_on(pta_load(conns, seconds, rounds, agents, busy))?
        }
        Cmd::FreshStart { runs, lab, busy, dcs, forests, busy_elsewhere } => {
            let _load = Busy::start(busy, busy_elsewhere)?;
            let load = format!(
                "{busy} busy process(es) beside it{} on {} CPUs",
                if busy_elsewhere { " in a session of their own" } else { "" },
                std::thread::available_parallelism().map_or(0, |n| n.get())
            );
            tokio::runtime::Runtime::new()?.block_on(fresh_start(runs, &lab, dcs, forests, load))?
        }
        Cmd::Spin => loop {
            std::hint::black_box(0u64.wrapping_add(1));
        },
        Cmd::Writeback { conns, seconds, users_per_conn } => {
            tokio::runtime::Runtime::new()?.block_on(writeback_load(conns, seconds, users_per_conn))?
        }
        Cmd::Sync { users, changes, rounds } => tokio::runtime::Runtime::new()?.block_on(sync_bench(users, changes, rounds))?,
        Cmd::Scenarios { dir, rounds, jobs } => tokio::runtime::Runtime::new()?.block_on(scenarios(dir, rounds, jobs))?,
        Cmd::Lookup { sizes } => {
            for n in sizes {
                let d = directory_with(n)?;
                let who = ad_ds::Principal::User { dn: ad_ds::dn::Dn::root(), sam: "bench".into(), admin: true };
                let mut rng = rand::rngs::StdRng::seed_from_u64(1);
                let rounds = 200_000;
                let t = Instant::now();
                for _ in 0..rounds {
                    let i = rng.gen_range(0..n);
                    let req = ad_ds::directory::SearchRequest {
                        base: "DC=testlab,DC=example".into(),
                        scope: ad_ds::directory::Scope::Subtree,
                        filter: ad_ds::filter::Filter::Equal("sAMAccountName".into(), format!("load{i}")),
                    };
                    let hits = d.search(&who, &req)?;
                    assert_eq!(hits.len(), 1);
                }
                let indexed = t.elapsed().as_nanos() as f64 / rounds as f64;
                // The same question on an attribute without an index: a scan, for scale.
                let scans = 20;
                let t = Instant::now();
                for _ in 0..scans {
                    let i = rng.gen_range(0..n);
                    let req = ad_ds::directory::SearchRequest {
                        base: "DC=testlab,DC=example".into(),
                        scope: ad_ds::directory::Scope::Subtree,
                        filter: ad_ds::filter::Filter::Equal("displayName".into(), format!("Load User {i}")),
                    };
                    assert_eq!(d.search(&who, &req)?.len(), 1);
                }
                let scan = t.elapsed().as_nanos() as f64 / scans as f64;
                println!(
                    "{n} users: {indexed:.0} ns per sAMAccountName lookup (indexed); {:.0} us per displayName lookup (scan)",
                    scan / 1000.0
                );
            }
        }
    }
    Ok(())
}

async fn tenant_load(conns: usize, seconds: u64) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let lab = labkit::Lab::start(labkit::LabConfig::ephemeral(dir.path().to_path_buf())).await?;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&lab.info.adds.ca_cert)?)?;
    let client = reqwest::Client::builder().add_root_certificate(ca).build()?;
    let t = lab.info.tenant.clone();
    let form = [
        ("grant_type", "password"),
        ("client_id", t.client_id.as_str()),
        ("username", "user1@testlab.example"),
        ("password", "Summer-Lake-41"),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let token_url = format!("{}/oauth2/v2.0/token", t.authority);
    let body: serde_json::Value = client.post(&token_url).form(&form).send().await?.json().await?;
    let token = body["access_token"].as_str().unwrap_or_default().to_string();
    let me: serde_json::Value = client.get(format!("{}/me", t.graph)).bearer_auth(&token).send().await?.json().await?;
    let user_url = format!("{}/users/{}", t.graph, me["id"].as_str().unwrap_or_default());
    for (what, is_token) in [("token issuance (password grant)", true), ("Graph GET /users/{id}", false)] {
        let start = Arc::new(tokio::sync::Barrier::new(conns));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (client, start, token_url, user_url, token) =
                (client.clone(), start.clone(), token_url.clone(), user_url.clone(), token.clone());
            let form: Vec<(String, String)> = form.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let deadline = Instant::now() + Duration::from_secs(seconds);
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let r = if is_token {
                        client.post(&token_url).form(&form).send().await?
                    } else {
                        client.get(&user_url).bearer_auth(&token).send().await?
                    };
                    let ok = r.status().is_success();
                    let _ = r.bytes().await?;
                    if !ok {
                        bail!("{what}: request failed");
                    }
                    latencies.push(t0.elapsed());
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        all.sort();
        let median = all.get(all.len() / 2).copied().unwrap_or_default();
        println!(
            "{what}: {:.0}/s with {conns} clients, median latency {:.2} ms",
            all.len() as f64 / seconds as f64,
            median.as_secs_f64() * 1000.0
        );
    }
    // and one client alone: Graph's latency without queueing
    let mut one = Vec::new();
    for _ in 0..2000 {
        let t0 = Instant::now();
        let r = client.get(&user_url).bearer_auth(&token).send().await?;
        let _ = r.bytes().await?;
        one.push(t0.elapsed());
    }
    one.sort();
    println!("Graph GET /users/{{id}}, one client: median {:.3} ms", one[one.len() / 2].as_secs_f64() * 1000.0);
    lab.stop().await;
    Ok(())
}

async fn pta_load(conns: usize, seconds: u64, rounds: usize, agents: usize, busy: usize) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let mut cfg = labkit::LabConfig::ephemeral(dir.path().to_path_buf());
    cfg.engine = true;
    cfg.load_users = conns;
    cfg.sign_in = labkit::SignInMethod::PassThroughAuthentication;
    cfg.pta_agents = agents;
    let lab = labkit::Lab::start(cfg).await?;
    let host = lab.agents.clone().context("the lab's agents")?;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&lab.info.adds.ca_cert)?)?;
    let client = reqwest::Client::builder().add_root_certificate(ca).build()?;
    let t = lab.info.tenant.clone();
    let token_url = format!("{}/oauth2/v2.0/token", t.authority);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "password sign-ins, {conns} users at once (each its own synced user), {} agent(s) under PTA, {busy} busy process(es) on {cpus} CPUs, {rounds} alternating rounds of {seconds} s:",
        agents + 1
    );
    let mut results: std::collections::BTreeMap<&str, Vec<(f64, Duration, Duration)>> = Default::default();
    for round in 0..rounds * 2 {
        let (name, method) = if round % 2 == 0 {
            ("password hash sync", writeback::pta::Method::PasswordHashSync)
        } else {
            ("pass-through authentication", writeback::pta::Method::PassThroughAuthentication)
        };
        host.change_sign_in(method, &t.admin_upn, &t.admin_password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let start = Arc::new(tokio::sync::Barrier::new(conns));
        let mut tasks = Vec::new();
        for i in 0..conns {
            let (client, start, token_url) = (client.clone(), start.clone(), token_url.clone());
            let form: Vec<(String, String)> = vec![
                ("grant_type".into(), "password".into()),
                ("client_id".into(), t.client_id.clone()),
                ("username".into(), format!("load{i}@testlab.example")),
                ("password".into(), format!("Load-Pass-{i}-Aa")),
                ("scope".into(), "https://graph.microsoft.com/.default".into()),
            ];
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let deadline = Instant::now() + Duration::from_secs(seconds);
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let r = client.post(&token_url).form(&form).send().await?;
                    let ok = r.status().is_success();
                    let body = r.text().await?;
                    if !ok {
                        bail!("sign-in failed: {body}");
                    }
                    latencies.push(t0.elapsed());
                }
                anyhow::Ok(latencies)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        all.sort();
        let rate = all.len() as f64 / seconds as f64;
        let (median, p95) = (all[all.len() / 2], all[all.len() * 95 / 100]);
        results.entry(name).or_default().push((rate, median, p95));
    }
    for (name, runs) in &results {
        let rates: Vec<String> = runs.iter().map(|(r, _, _)| format!("{r:.0}")).collect();
        let medians: Vec<String> = runs.iter().map(|(_, m, _)| format!("{:.1}", m.as_secs_f64() * 1000.0)).collect();
        let p95s: Vec<String> = runs.iter().map(|(_, _, p)| format!("{:.1}", p.as_secs_f64() * 1000.0)).collect();
        println!("  {name}: {} sign-ins/s; median {} ms; p95 {} ms", rates.join(" / "), medians.join(" / "), p95s.join(" / "));
    }
    let counts: Vec<String> = host.all().iter().map(|a| format!("{} {}", a.machine_name(), a.counters()[0])).collect();
    println!("  validations per agent: {}", counts.join(", "));
    lab.stop().await;
    Ok(())
}

async fn startup(runs: usize) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // One state directory, as repeated `lab up` runs share `.lab/`: the first start makes
    // the tenant's signing key and keeps it there.
    let dir = tempfile::tempdir()?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let lab = labkit::Lab::start(labkit::LabConfig::ephemeral(dir.path().to_path_buf())).await?;
        times.push(t0.elapsed());
        lab.stop().await;
    }
    let first = times[0];
    let mut rest = times[1..].to_vec();
    rest.sort();
    println!(
        "lab start (AD DS + tenant, listeners bound): first {:.0} ms (makes the tenant's RSA-2048 key), then median {:.1} ms over {} starts",
        first.as_secs_f64() * 1000.0,
        rest.get(rest.len() / 2).copied().unwrap_or_default().as_secs_f64() * 1000.0,
        rest.len()
    );
    Ok(())
}

/// Processes spinning on the CPUs while a measurement runs (killed when dropped).
struct Busy(Vec<std::process::Child>);

impl Busy {
    /// `elsewhere`: each in a new session (its own autogroup), as a load from another terminal.
    fn start(n: usize, elsewhere: bool) -> Result<Busy> {
        use std::os::unix::process::CommandExt;
        let me = std::env::current_exe()?;
        let spin = || {
            let mut c = std::process::Command::new(&me);
            c.arg("spin");
            if elsewhere {
                // SAFETY: setsid is async-signal-safe, and nothing else runs between fork and exec
                unsafe {
                    c.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
                }
            }
            c.spawn()
        };
        let kids = (0..n).map(|_| spin()).collect::<std::io::Result<_>>()?;
        Ok(Busy(kids))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for k in &mut self.0 {
            let _ = k.kill();
            let _ = k.wait();
        }
    }
}

/// The machine's load as /proc/loadavg says it (1, 5 and 15 minutes).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// Median, p95 and max of some durations, in ms.
fn spread_ms(mut v: Vec<std::time::Duration>) -> String {
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    format!("median {:.1} ms, p95 {:.1} ms, max {:.1} ms (min {:.1}, n={})", at(0.5), at(0.95), at(1.0), at(0.0), v.len())
}

async fn fresh_start(runs: usize, lab_bin: &std::path::Path, dcs: usize, forests: usize, load: String) -> Result<()> {
    use std::io::BufRead;
    // a process: `lab up --json` until its line on stdout, process start included
    let run = || -> Result<std::time::Duration> {
        let dir = tempfile::tempdir()?;
        let mut cmd = std::process::Command::new(lab_bin);
        cmd.args([
            "up",
            "--json",
            "--frozen-clock",
            "--ldap",
            "127.0.0.1:0",
            "--ldaps",
            "127.0.0.1:0",
            "--https",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--dcs",
            &dcs.to_string(),
            "--forests",
            &forests.to_string(),
            "--state-dir",
        ])
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
        let t = Instant::now();
        let mut child = cmd.spawn()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let took = t.elapsed();
        anyhow::ensure!(line.starts_with('{'), "no JSON line: {line:?}");
        child.kill()?;
        child.wait()?;
        Ok(took)
    };
    let times: Vec<_> = (0..runs).map(|_| run()).collect::<Result<_>>()?;
    println!(
        "`lab up --json --dcs {dcs} --forests {forests}` x{runs} back to back, each in a new empty state directory, to its JSON line: {}",
        spread_ms(times)
    );
    println!("  load: {load}; loadavg after: {}", loadavg());
    // in process: a new temp dir each time
    let _ = rustls::crypto::ring::default_provider().install_default();
    for engine in [false, true] {
        let mut times = vec![];
        for _ in 0..runs {
            let dir = tempfile::tempdir()?;
            let mut cfg = labkit::LabConfig::ephemeral(dir.path().to_path_buf());
            cfg.engine = engine;
            cfg.dcs = dcs;
            cfg.forests = forests;
            let t = Instant::now();
            let lab = labkit::Lab::start(cfg).await?;
            times.push(t.elapsed());
            lab.stop().await;
        }
        println!(
            "Lab::start ({forests} forest(s) x {dcs} DC) in a new empty state directory{}: {}",
            if engine { " with the engine" } else { "" },
            spread_ms(times)
        );
    }
    Ok(())
}

/// The lab's AD DS over LDAPS, bound as its administrator.
async fn admin_ldaps(info: &labkit::LabInfo) -> Result<ldap3::Ldap> {
    use rustls::pki_types::pem::PemObject;
    let ca = std::fs::read(&info.adds.ca_cert)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c?)?;
    }
    let tls = Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
    let url = info.adds.ldaps.replace("127.0.0.1", "localhost");
    let (conn, mut l) = ldap3::LdapConnAsync::with_settings(ldap3::LdapConnSettings::new().set_config(tls), &url).await?;
    ldap3::drive!(conn);
    l.simple_bind(&info.adds.admin_dn, &info.adds.admin_password).await?.success()?;
    Ok(l)
}

async fn sync_bench(users: usize, changes: usize, rounds: usize) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    for round in 0..rounds {
        let dir = tempfile::tempdir()?;
        let mut cfg = labkit::LabConfig::ephemeral(dir.path().to_path_buf());
        cfg.engine = true;
        cfg.load_users = users;
        cfg.presynced = false;
        let lab = labkit::Lab::start(cfg).await?;
        let engine = lab.engine.clone().expect("engine");
        let t = Instant::now();
        let initial = engine.sync(relay::PolicyType::Initial).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let initial_time = t.elapsed();
        anyhow::ensure!(initial.added >= users && initial.errors.is_empty(), "initial: {initial:?}");
        // the delta: changes users get a new display name and a new password, over LDAP
        let mut l = admin_ldaps(&lab.info).await?;
        for i in 0..changes {
            let dn = format!("CN=Load{i},OU=Lab Users,{}", lab.info.adds.base_dn);
            let pw: Vec<u8> = format!("\"Bench-Delta-{round}-{i}-Xy\"").encode_utf16().flat_map(u16::to_le_bytes).collect();
            let mods = vec![
                ldap3::Mod::Replace(b"displayName".to_vec(), std::collections::HashSet::from([format!("Changed {i}").into_bytes()])),
                ldap3::Mod::Replace(b"unicodePwd".to_vec(), std::collections::HashSet::from([pw])),
            ];
            l.modify(&dn, mods).await?.success()?;
        }
        let t = Instant::now();
        let delta = engine.sync(relay::PolicyType::Delta).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let delta_time = t.elapsed();
        anyhow::ensure!(delta.updated == changes && delta.passwords == changes, "delta: {delta:?}");
        println!(
            "sync round {round}: initial {} users + {} password hashes in {:.0} ms; delta of {changes} changed users ({} updated, {} hashes) in {:.1} ms",
            initial.added,
            initial.passwords,
            initial_time.as_secs_f64() * 1000.0,
            delta.updated,
            delta.passwords,
            delta_time.as_secs_f64() * 1000.0
        );
        lab.stop().await;
    }
    Ok(())
}

async fn writeback_load(conns: usize, seconds: u64, per_conn: usize) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let mut cfg = labkit::LabConfig::ephemeral(dir.path().to_path_buf());
    cfg.engine = true;
    cfg.load_users = conns * per_conn;
    let lab = labkit::Lab::start(cfg).await?;
    // every reset may follow the last at once: no minimum age, no history
    {
        let mut l = admin_ldaps(&lab.info).await?;
        let set = |a: &'static str, v: &'static str| ldap3::Mod::Replace(a, std::collections::HashSet::from([v]));
        l.modify(&lab.info.adds.base_dn, vec![set("minPwdAge", "0"), set("pwdHistoryLength", "0")]).await?.success()?;
    }
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&lab.info.adds.ca_cert)?)?;
    let client = reqwest::Client::builder().add_root_certificate(ca).build()?;
    let base = lab.info.tenant.https.clone();
    // the outbox is the lab administrator's (as a trainer reads it): one token for the run
    let t = &lab.info.tenant;
    let form = [
        ("grant_type", "password"),
        ("client_id", t.client_id.as_str()),
        ("client_secret", t.client_secret.as_str()),
        ("username", t.admin_upn.as_str()),
        ("password", t.admin_password.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let body: serde_json::Value = client.post(format!("{}/oauth2/v2.0/token", t.authority)).form(&form).send().await?.json().await?;
    let admin = body["access_token"].as_str().context("an administrator's token")?.to_string();
    let start = Arc::new(tokio::sync::Barrier::new(conns));
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (client, start, base, admin) = (client.clone(), start.clone(), base.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut latencies = Vec::new();
            let mut n = 0usize;
            while Instant::now() < deadline {
                let i = c * per_conn + n % per_conn;
                n += 1;
                let upn = format!("load{i}@testlab.example");
                let flow: serde_json::Value = client
                    .post(format!("{base}/lab/sspr/flows"))
                    .json(&serde_json::json!({ "userPrincipalName": upn }))
                    .send()
                    .await?
                    .json()
                    .await?;
                let id = flow["id"].as_str().unwrap_or_default().to_string();
                client.post(format!("{base}/lab/sspr/flows/{id}/codes")).json(&serde_json::json!({ "method": "email" })).send().await?;
                let out: serde_json::Value = client
                    .get(format!("{base}/lab/outbox?to=load{i}@alt.testlab.example"))
                    .bearer_auth(&admin)
                    .send()
                    .await?
                    .json()
                    .await?;
                let code = out["value"].as_array().and_then(|a| a.last()).map(|m| m["code"].clone()).unwrap_or_default();
                client
                    .post(format!("{base}/lab/sspr/flows/{id}/verify"))
                    .json(&serde_json::json!({ "method": "email", "code": code }))
                    .send()
                    .await?;
                let t0 = Instant::now();
                let r = client
                    .post(format!("{base}/lab/sspr/flows/{id}/reset"))
                    .json(&serde_json::json!({ "newPassword": format!("Bench-Reset-{i}-{n}-Xy") }))
                    .send()
                    .await?;
                let ok = r.status().is_success();
                let body = r.text().await?;
                latencies.push(t0.elapsed());
                if !ok {
                    bail!("a reset failed: {body}");
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort();
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "SSPR resets written back, {conns} users at once: {:.0}/s; reset latency p50 {:.2} ms, p99 {:.2} ms ({} resets)",
        all.len() as f64 / seconds as f64,
        q(0.5),
        q(0.99),
        all.len()
    );
    // every reset written back has its PasswordResetSuccess (while the bounded log holds them
    // all: two events a reset, a few hundred bytes each)
    let events = lab.engine.as_ref().map(|e| e.events().iter().filter(|e| e.id == 31002).count()).unwrap_or(0);
    if all.len() * 2 * 512 < writeback::EVENTS_BUDGET && events != all.len() {
        bail!("{events} PasswordResetSuccess events for {} resets", all.len());
    }
    lab.stop().await;
    Ok(())
}

async fn scenarios(dir: std::path::PathBuf, rounds: usize, jobs: usize) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let files = scenario::suite::discover(std::slice::from_ref(&dir))?;
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    for round in 1..=rounds {
        let t0 = Instant::now();
        let results = scenario::suite::run_all(&dir, files.clone(), jobs).await;
        let wall = t0.elapsed();
        let failed = results.iter().filter(|r| !r.passed()).count();
        if failed > 0 {
            bail!("{failed} scenarios failed");
        }
        let mut starts: Vec<f64> = results.iter().map(|r| r.lab_start.as_secs_f64() * 1000.0).collect();
        let mut totals: Vec<f64> = results.iter().map(|r| r.duration.as_secs_f64() * 1000.0).collect();
        println!(
            "round {round}: {} scenarios, -j {jobs}: wall {:.0} ms; lab start median {:.1} ms, p95 {:.1} ms, max {:.1} ms; scenario median {:.1} ms, max {:.1} ms",
            results.len(),
            wall.as_secs_f64() * 1000.0,
            pct(&mut starts, 0.5),
            pct(&mut starts, 0.95),
            pct(&mut starts, 1.0),
            pct(&mut totals, 0.5),
            pct(&mut totals, 1.0),
        );
    }
    Ok(())
}

fn directory_with_text(text: &str) -> Result<ad_ds::Directory> {
    let cfg = ad_ds::DomainConfig {
        dns_name: "testlab.example".into(),
        netbios: "TESTLAB".into(),
        dc_name: "DC1".into(),
        sid: [1, 2, 3],
        seed: 7,
        admin_password: "Bench-Admin-1!".into(),
    };
    let mut d = ad_ds::Directory::new(cfg, clock::Clock::frozen(clock::Clock::lab_epoch()));
    d.import(ad_ds::ldif::parse(text)?)?;
    Ok(d)
}
