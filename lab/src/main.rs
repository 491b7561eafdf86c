//! `lab`: start a hybrid identity lab on this machine, save its state.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use clock::Clock;
use labkit::{DEFAULT_HTTP, DEFAULT_HTTPS, DEFAULT_LDAP, DEFAULT_LDAPS, Lab, LabConfig};
use scenario::files;

// A directory is millions of small allocations; glibc's malloc spends a third of an import
// consolidating them (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "A hybrid identity lab on one machine: a fake AD DS, a fake Entra ID tenant, and the writeback and sync engine between them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the lab on its built-in environment "testlab" and run until Ctrl-C / SIGTERM.
    Up(UpArgs),
    /// Save a running lab's AD DS as LDIF (with password hashes), for `lab up --adds-ldif`.
    Export(ExportArgs),
    /// Run scenario files (default: scenarios/), each in its own lab; exit 1 if any fails.
    Run(RunArgs),
    /// Check scenario files without running them.
    Check(CheckArgs),
    /// Print the JSON Schema of the scenario format (docs/scenario.schema.json), or with
    /// `exercise` of the exercise format (docs/exercise.schema.json).
    Schema {
        #[arg(value_enum, default_value = "scenario")]
        format: SchemaFormat,
    },
    /// List the exercises (`lab up --exercise NAME` starts one).
    Exercises {
        /// Where the exercise files are (default: those built into `lab`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The on-premises scenarios against an external directory (a Samba AD DC) and against
    /// the built-in AD DS, side by side (`make conformance` provisions Samba and runs this).
    /// Exit 1 when the built-in side fails, or Samba differs where no scenario says it does.
    Conformance(ConformanceArgs),
    /// Run a sync cycle on a running lab now (`Start-ADSyncSyncCycle`), as its Global
    /// Administrator, through the tenant's `POST /lab/sync`; print the report.
    Sync(SyncArgs),
    /// A running lab's domain controllers (`lab up --dcs N`): each one's state and highest
    /// USN, the replication's switches, and with `--object` that object as each DC holds it
    /// (as `Get-ADUser -Server DC2` would show it) — replication lag made visible.
    Dcs(DcsArgs),
    /// Wait until the lab in a state directory is up (its lab.json written, its listeners
    /// answering) — for scripts that start `lab up` in the background; exit 1 on timeout.
    /// Put a running lab back to its start — an exercise to its beginning — keeping its CA,
    /// ports and URLs (clients need import nothing again); waits until it is up again.
    Reset {
        /// The lab's state directory.
        #[arg(long, default_value = ".lab")]
        state_dir: PathBuf,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Start one lab per trainee on this machine and list each one's URLs and credentials
    /// for the trainer (docs/exercises.md, "A classroom"); run until Ctrl-C / SIGTERM.
    Classroom(ClassroomArgs),
    Wait {
        /// The lab's state directory.
        #[arg(long, default_value = ".lab")]
        state_dir: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

impl Command {
    /// Commands that only print, for which a closed pipe may end the process. Everything that
    /// talks over a socket keeps SIGPIPE ignored: TLS writes go through writev, which raises
    /// SIGPIPE when the peer has gone, so a trainee's aborted curl killed `lab up` (exit -13).
    fn only_prints(&self) -> bool {
        matches!(self, Command::Check(_) | Command::Schema { .. } | Command::Exercises { .. })
    }
}

#[derive(clap::Args)]
struct ConformanceArgs {
    /// Files or directories of scenarios.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    external: ExternalArgs,
    /// Write the table (Markdown) here too.
    #[arg(long, value_name = "FILE")]
    table: Option<PathBuf>,
    /// Write JUnit XML of the external runs here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SyncArgs {
    /// The running lab's state directory (`lab up` writes lab.json and ca.pem there).
    #[arg(long, default_value = ".lab")]
    state_dir: PathBuf,
    /// A full import and every password hash again (default: a delta cycle).
    #[arg(long)]
    initial: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct DcsArgs {
    /// The running lab's state directory.
    #[arg(long, default_value = ".lab")]
    state_dir: PathBuf,
    /// An object to show on each DC: a DN, a sAMAccountName or a UPN.
    #[arg(long)]
    object: Option<String>,
    /// Replicate now first (`repadmin /syncall`).
    #[arg(long)]
    replicate: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Files or directories of scenarios.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    /// Only scenarios whose name (path under the scenarios directory) contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write each scenario's redacted transcript into this directory.
    #[arg(long, value_name = "DIR")]
    transcripts: Option<PathBuf>,
    /// Write a self-contained HTML report here: per scenario its steps, the failure with
    /// expected and actual, and a sequence diagram of what went over the wire.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// How many scenarios run at once (each has its own lab); default: the number of CPUs.
    #[arg(short = 'j', long)]
    jobs: Option<usize>,
    /// Run only shard K of N (`1/3`, `2/3`, `3/3`): the files, sorted, dealt round-robin as
    /// `cargo nextest run --partition count:K/N` deals the scenario tests — one CI machine each.
    #[arg(long, value_name = "K/N", value_parser = parse_partition)]
    partition: Option<(usize, usize)>,
    /// The sync agent(s) a scenario runs under when its `given:` names none: connect-sync
    /// (default), cloud-sync (Cloud Sync's provisioning agent: scenarios marked
    /// `cloud_sync_differs` must come out differently, and the report says why) or both.
    #[arg(long, value_name = "AGENT", default_value = "connect-sync", value_parser = parse_agents, conflicts_with = "adds")]
    agent: labkit::SyncAgents,
    #[command(flatten)]
    external: ExternalArgs,
}

/// An external directory (a Samba AD DC, a Windows DC) holding the testlab domain.
#[derive(clap::Args)]
struct ExternalArgs {
    /// Use this directory (`ldaps://HOST:PORT`) as the lab's AD DS instead of the built-in
    /// one; the testlab is seeded into it over LDAP (before each scenario, when running them).
    #[arg(long, value_name = "URL")]
    adds: Option<String>,
    /// Its administrator.
    #[arg(long, value_name = "DN", default_value = "CN=Administrator,CN=Users,DC=testlab,DC=example")]
    adds_admin: String,
    /// The administrator's password.
    #[arg(long, value_name = "PASSWORD", default_value = labkit::testlab::ADMIN_PASSWORD, hide_default_value = true)]
    adds_password: String,
    /// The CA its LDAPS certificate chains to.
    #[arg(long, value_name = "FILE")]
    adds_ca: Option<PathBuf>,
}

impl ExternalArgs {
    fn external(&self) -> Result<Option<scenario::external::External>> {
        let Some(url) = &self.adds else { return Ok(None) };
        let Some(ca) = &self.adds_ca else { bail!("--adds needs --adds-ca (the CA of the directory's LDAPS certificate)") };
        let ca_pem = files::read(ca, files::PEM_MAX).with_context(|| format!("reading {}", ca.display()))?;
        Ok(Some(scenario::external::External {
            ldaps: url.clone(),
            admin_dn: self.adds_admin.clone(),
            admin_password: self.adds_password.clone(),
            ca_pem,
        }))
    }
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Files or directories of scenarios.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
}

#[derive(clap::Args)]
struct UpArgs {
    /// LDAP listener (StartTLS offered); port 0 = any free port.
    #[arg(long, default_value = DEFAULT_LDAP)]
    ldap: SocketAddr,
    /// LDAPS listener; port 0 = any free port.
    #[arg(long, default_value = DEFAULT_LDAPS)]
    ldaps: SocketAddr,
    /// The tenant's HTTPS listener (OIDC, tokens, Graph; MSAL needs https); port 0 = any.
    #[arg(long, default_value = DEFAULT_HTTPS)]
    https: SocketAddr,
    /// The tenant's plain HTTP listener (curl in a hurry); port 0 = any free port.
    #[arg(long, default_value = DEFAULT_HTTP)]
    http: SocketAddr,
    /// Print one JSON line with every endpoint and credential once the lab is ready.
    #[arg(long)]
    json: bool,
    /// Exit (as on SIGTERM) when the process that started `lab up` ends, so a killed test
    /// run leaves no lab behind. On by default with --json; `--exit-with-parent=false` keeps
    /// the lab running.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    exit_with_parent: Option<bool>,
    /// Seed the AD DS from this LDIF file (on top of the built-in domain objects) instead
    /// of the built-in users.
    #[arg(long, value_name = "FILE")]
    adds_ldif: Option<PathBuf>,
    /// Where the lab writes files for clients (the CA certificate, ca.pem).
    #[arg(long, default_value = ".lab")]
    state_dir: PathBuf,
    /// TLS certificate chain (PEM) to serve instead of a lab-made one; needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seed for every generated value (GUIDs): the same seed gives the same lab.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop the lab clock at a fixed instant (it moves only when advanced).
    #[arg(long)]
    frozen_clock: bool,
    /// Do not start the writeback engine (the tenant then answers as Entra does with no
    /// engine connected: SSPR_0010 until something enables writeback, SSPR_0030 after).
    #[arg(long)]
    no_engine: bool,
    /// The sourceAnchor: objectGUID, or mS-DS-ConsistencyGuid (Connect's default since
    /// 1.1.524; the synced users' AD objects then carry it).
    #[arg(long, default_value = "objectGUID", value_parser = parse_anchor)]
    source_anchor: writeback::SourceAnchor,
    /// Start before Connect's first sync cycle: the tenant holds its cloud-only accounts,
    /// and `lab sync` (or the engine's schedule) brings the on-premises users.
    #[arg(long)]
    unsynced: bool,
    /// How synced users sign in: `phs` (password hash sync: the cloud checks the synced hash)
    /// or `pta` (pass-through authentication: an agent beside Connect asks AD at every
    /// sign-in). Connect's "Change user sign-in" task switches it later.
    #[arg(long, value_name = "METHOD", default_value = "phs", value_parser = parse_sign_in, conflicts_with = "no_engine")]
    sign_in: labkit::SignInMethod,
    /// Standalone authentication agents to install beside Connect's (each its own key and
    /// queue link; with Connect's, at most 40 a tenant).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=39), conflicts_with = "no_engine")]
    pta_agents: u8,
    /// Domain controllers of the domain: DC1 (the PDC emulator) and replicas, each on its own
    /// ports with its own copy of the directory, replicating every 15 s of the lab clock
    /// (`/lab/adds/replication` pauses it or runs it now).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    dcs: u8,
    /// Forests: 2 adds fabrikam.example (FABRIKAM: FDC1…, FUser1, FUser2, its own connector
    /// account), `--dcs` DCs of its own.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    forests: u8,
    /// A child domain in testlab's forest: child.testlab.example (CHILD: CDC1…, CUser1).
    #[arg(long)]
    child_domain: bool,
    /// The sync agent(s): connect-sync (Microsoft Entra Connect Sync, default), cloud-sync
    /// (Cloud Sync's provisioning agent in Connect's place, running as provAgentgMSA$) or
    /// both (side by side: Connect OU=Lab Users, Cloud Sync OU=Cloud Sync Users with User6).
    #[arg(long, value_name = "AGENT", default_value = "connect-sync", value_parser = parse_agents, conflicts_with = "no_engine")]
    agent: labkit::SyncAgents,
    /// An OU (its DN) that directory sync covers; repeat for more. Default: OU=Lab Users in
    /// the built-in domain, the whole domain for one from --adds-ldif.
    #[arg(long, value_name = "DN")]
    sync_ou: Vec<String>,
    /// Set the lab up as this scenario's `given:` says, print its steps, and stop there so
    /// that a trainee can play them by hand.
    #[arg(long, value_name = "FILE", conflicts_with = "exercise")]
    scenario: Option<PathBuf>,
    /// Start an exercise (a name from `lab exercises`, or a file): the lab set up where it
    /// starts, its checklist on the dashboard, ticking as you do each task.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["no_engine", "adds"])]
    exercise: Option<String>,
    /// Where `--exercise` looks for exercises by name (default: those built into `lab`).
    #[arg(long, value_name = "DIR")]
    exercises: Option<PathBuf>,
    /// A name other machines reach this lab by (repeatable): put in its certificate, accepted
    /// as a Host, and the first one used in the URLs it prints. Listen beyond loopback too
    /// (`--https 0.0.0.0:8443`, …) for trainees' laptops to connect.
    #[arg(long, value_name = "NAME")]
    hostname: Vec<String>,
    #[command(flatten)]
    external: ExternalArgs,
}

#[derive(clap::Args)]
struct ClassroomArgs {
    /// How many labs (one per trainee; at most 40 on one machine).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=40))]
    labs: u16,
    /// The name trainees reach the labs by (repeatable); `{n}` in it is the lab's number
    /// (`lab{n}.classroom.example`), else the labs share it and differ by port.
    #[arg(long, value_name = "NAME")]
    hostname: Vec<String>,
    /// The address every lab listens on: 0.0.0.0 (or this machine's LAN address) for
    /// trainees' laptops; the default keeps them on this machine.
    #[arg(long, default_value = "127.0.0.1")]
    listen: std::net::IpAddr,
    /// Lab n listens on PORT+4(n-1) to PORT+4(n-1)+3 (LDAP, LDAPS, HTTPS, HTTP); 0: any
    /// free ports (listed).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    first_port: u16,
    /// Every lab starts this exercise (a name from `lab exercises`, or a file).
    #[arg(long, value_name = "NAME")]
    exercise: Option<String>,
    /// Where `--exercise` looks for exercises by name.
    #[arg(long, value_name = "DIR")]
    exercises: Option<PathBuf>,
    /// Lab n's state directory is DIR/labn (its ca.pem, lab.json; `lab reset --state-dir`).
    #[arg(long, default_value = ".lab-classroom")]
    state_dir: PathBuf,
    /// Print one JSON line, `{"labs": [...]}` (each as `lab up --json` prints it).
    #[arg(long)]
    json: bool,
    /// As `lab up --exit-with-parent` (on by default with --json).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    exit_with_parent: Option<bool>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaFormat {
    Scenario,
    Exercise,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// The lab's LDAPS endpoint.
    #[arg(long, default_value = "ldaps://127.0.0.1:1636")]
    ldaps: String,
    /// An administrator's DN (or UPN, or DOMAIN\sam).
    #[arg(long, default_value = "CN=Administrator,CN=Users,DC=testlab,DC=example")]
    bind_dn: String,
    /// Its password (default: testlab's Administrator).
    #[arg(long, default_value = labkit::testlab::ADMIN_PASSWORD, hide_default_value = true)]
    password: String,
    /// The CA certificate to trust (written by `lab up`).
    #[arg(long, default_value = ".lab/ca.pem")]
    ca: PathBuf,
    /// Write here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// A running lab's state directory: its lab.json gives the endpoint, the administrator
    /// and the CA (instead of the flags above), as for `lab sync`.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

/// RUST_LOG's filter (warn by default), except that the LDAP codec crates never log: their
/// trace output dumps whole requests, unicodePwd values among them. The AD DS reports
/// undecodable requests itself (rate-limited), without their contents.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,writeback=error".into());
    ["ldap3_proto=off", "ldap3=off", "lber=off", "ldap3_lber=off"]
        .into_iter()
        .fold(filter, |f, d| f.add_directive(d.parse().expect("a valid directive")))
}

/// A lab answers requests: it asks the scheduler for short slices (Linux 6.12's EEVDF takes a
/// thread's `sched_runtime` as the slice it wants), so that on a machine whose cores are busy
/// (CI running other tests) a thread woken by a request runs within ~0.1 ms instead of after
/// another thread's 3 ms slice. Its share of the CPU is unchanged (same weight, same nice);
/// only its latency is. Threads inherit it. Older kernels ignore the field or refuse the call:
/// nothing changes then.
#[cfg(target_os = "linux")]
fn short_slice() {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice: 0,
        priority: 0,
        runtime: SLICE_NS,
        deadline: 0,
        period: 0,
    };
    // SAFETY: pid 0 is the calling thread; `attr` is a valid sched_attr (SCHED_ATTR_SIZE_VER0)
    // that outlives the call, and flags 0 asks for nothing beyond the policy and the slice
    unsafe {
        libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0);
    }
}

/// The slice a lab's threads ask for: EEVDF's smallest (0.1 ms).
#[cfg(target_os = "linux")]
const SLICE_NS: u64 = 100_000;

/// No transparent huge pages: mimalloc asks for them, and each is 2 MiB zeroed at its first
/// touch — 9 % of a fresh `lab up`'s CPU, profiled (docs/benchmarks.md) — for a process whose
/// heap is mostly a few MiB. Set from a constructor, before the Rust runtime's first
/// allocation: from `main` it came too late for the first two pages (~1.3 ms of every start).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static NO_HUGE_PAGES: extern "C" fn() = {
    extern "C" fn no_huge_pages() {
        // SAFETY: a process-wide flag with no pointers; failure (an old kernel) changes nothing
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
        short_slice();
    }
    no_huge_pages
};

fn main() -> std::process::ExitCode {
    // an expected error (a missing file, a lab that is not running) is a sentence with its
    // causes, never a backtrace, whatever RUST_BACKTRACE says: backtraces are for bugs (panics)
    match lab_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn lab_main() -> Result<()> {
    let cli = Cli::parse();
    if cli.command.only_prints() {
        // `lab exercises | head`: a closed pipe ends the output quietly, as for any Unix
        // tool, instead of a panic (Rust ignores SIGPIPE by default).
        // SAFETY: setting a signal's disposition to its default before any thread starts
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(log_filter()).init();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Up(args) => rt.block_on(up(args)),
        Command::Export(args) => rt.block_on(export(args)),
        Command::Run(args) => rt.block_on(run(args)),
        Command::Check(args) => check(args),
        Command::Sync(args) => rt.block_on(sync(args)),
        Command::Dcs(args) => rt.block_on(dcs(args)),
        Command::Wait { state_dir, timeout } => rt.block_on(wait(&state_dir, timeout)),
        Command::Reset { state_dir, timeout } => rt.block_on(reset(&state_dir, timeout)),
        Command::Classroom(args) => rt.block_on(classroom(args)),
        Command::Conformance(args) => rt.block_on(conformance(args)),
        Command::Exercises { dir } => exercises(&shelf(dir)),
        Command::Schema { format } => {
            let schema = match format {
                SchemaFormat::Scenario => scenario::model::schema(),
                SchemaFormat::Exercise => scenario::exercise::schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(())
        }
    }
}

/// The directory scenario names are relative to: the common root of the paths given.
fn scenarios_root(paths: &[PathBuf]) -> PathBuf {
    match paths {
        [one] if one.is_dir() => one.clone(),
        [one] => one.parent().map(PathBuf::from).unwrap_or_default(),
        _ => PathBuf::from("."),
    }
}

async fn run(a: RunArgs) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = scenarios_root(&a.paths);
    let mut files = scenario::suite::discover(&a.paths)?;
    if let Some(f) = &a.filter {
        files.retain(|p| scenario::suite::test_id(&root, p).contains(f.as_str()));
    }
    if let Some((k, n)) = a.partition {
        files.sort_by_key(|p| scenario::suite::test_id(&root, p));
        files = files.into_iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, p)| p).collect();
    }
    if files.is_empty() {
        bail!("no scenario files to run");
    }
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(usize::from).unwrap_or(2));
    let started = std::time::Instant::now();
    let results = match a.external.external()? {
        Some(ext) => {
            let can = labkit::external::probe(&ext).await.map_err(|e| anyhow::anyhow!("{}: {e}", ext.ldaps))?;
            scenario::suite::run_all_external(&root, files, &ext, can).await
        }
        None => scenario::suite::run_all_as(&root, files, jobs, a.agent).await,
    };
    print!("{}", scenario::suite::human(&results, scenario::suite::Style::for_stdout()));
    println!("wall time {} ms", started.elapsed().as_millis());
    if let Some(path) = &a.junit {
        std::fs::write(path, scenario::suite::junit(&results)).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.html {
        std::fs::write(path, scenario::suite::html(&results)).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &a.transcripts {
        if dir.exists() && !dir.is_dir() {
            bail!("--transcripts {}: not a directory (transcripts are written one file per scenario into it)", dir.display());
        }
        for r in &results {
            let file = dir.join(format!("{}.txt", r.id));
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&file, &r.transcript).with_context(|| format!("writing {}", file.display()))?;
        }
    }
    if results.iter().any(|r| !r.passed()) {
        std::process::exit(1);
    }
    Ok(())
}

fn check(a: CheckArgs) -> Result<()> {
    let files = scenario::suite::discover(&a.paths)?;
    // exercise files (a `tasks:` list) are checked as exercises, the rest as scenarios
    let (exercises, scenarios): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|f| is_exercise(f));
    let mut errors = scenario::suite::check(&scenarios);
    for f in &exercises {
        match scenario::exercise::load(f) {
            Ok(x) => errors.extend(scenario::exercise::answers_given_away(&x).into_iter().map(|why| scenario::model::ParseError {
                file: f.display().to_string(),
                line: 1,
                column: 1,
                message: format!("{why}: keep answers in hints and the solution"),
                detail: String::new(),
            })),
            Err(e) => errors.push(e),
        }
    }
    for e in &errors {
        // file:line:column: what — then the parser's picture of the place, without its
        // own first line (the same message again)
        eprintln!("{e}");
        for l in e.detail.lines().skip(1) {
            eprintln!("{l}");
        }
    }
    let s = |n: usize| if n == 1 { "" } else { "s" };
    let what = match (scenarios.len(), exercises.len()) {
        (n, 0) => format!("{n} scenario file{}", s(n)),
        (0, m) => format!("{m} exercise file{}", s(m)),
        (n, m) => format!("{n} scenario file{} and {m} exercise file{}", s(n), s(m)),
    };
    if errors.is_empty() {
        println!("{what} checked: all valid");
        Ok(())
    } else {
        let bad: std::collections::BTreeSet<&str> = errors.iter().map(|e| e.file.as_str()).collect();
        bail!("{} mistake{} in {} of {what}", errors.len(), s(errors.len()), bad.len())
    }
}

/// Whether a file is an exercise: a top-level `tasks:` (a scenario has `steps:`).
fn is_exercise(path: &std::path::Path) -> bool {
    files::read_text(path, files::SCENARIO_MAX).is_ok_and(|t| t.lines().any(|l| l.starts_with("tasks:")))
}

fn parse_partition(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{s}`: expected K/N with 1 <= K <= N, e.g. 1/3");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

fn parse_sign_in(s: &str) -> Result<labkit::SignInMethod, String> {
    labkit::SignInMethod::parse(s).ok_or_else(|| "phs (password hash sync) or pta (pass-through authentication)".into())
}

fn parse_agents(s: &str) -> Result<labkit::SyncAgents, String> {
    labkit::SyncAgents::parse(s).ok_or_else(|| "connect-sync, cloud-sync or both".into())
}

fn parse_anchor(s: &str) -> Result<writeback::SourceAnchor, String> {
    writeback::SourceAnchor::parse(s).ok_or_else(|| "expected objectGUID or mS-DS-ConsistencyGuid".into())
}

async fn conformance(a: ConformanceArgs) -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(ext) = a.external.external()? else { bail!("conformance needs --adds and --adds-ca") };
    let root = scenarios_root(&a.paths);
    let can = labkit::external::probe(&ext).await.map_err(|e| anyhow::anyhow!("{}: {e}", ext.ldaps))?;
    let mut eligible = vec![];
    // why the others are not compared: the reason (without its step number), how many
    let mut skipped: std::collections::BTreeMap<String, usize> = Default::default();
    for f in scenario::suite::discover(&a.paths)? {
        let s = scenario::suite::load(&f).map_err(|e| anyhow::anyhow!("{e}"))?;
        match scenario::external::ineligible(&s, can) {
            None => eligible.push((f, s.samba_differs.clone())),
            Some(why) => *skipped.entry(why.split_once("` ").map(|(_, r)| r.to_string()).unwrap_or(why)).or_default() += 1,
        }
    }
    let files: Vec<PathBuf> = eligible.iter().map(|(f, _)| f.clone()).collect();
    let theirs = scenario::suite::run_all_external(&root, files.clone(), &ext, can).await;
    let ours = scenario::suite::run_all(&root, files, 2).await;
    let mut table = format!("| scenario | against {} | against the built-in AD DS |\n|---|---|---|\n", ext.ldaps);
    let mut bad = 0;
    let mut details = String::new();
    for (((_, differs), t), o) in eligible.iter().zip(&theirs).zip(&ours) {
        let theirs_text = match (t.passed(), differs) {
            (true, None) => "pass".to_string(),
            (false, Some(why)) => format!("differs, as known: {}", why.trim()),
            (true, Some(_)) => {
                bad += 1;
                "**pass, but the scenario says Samba differs: remove `samba_differs`**".to_string()
            }
            (false, None) => {
                bad += 1;
                "**FAIL (an unexplained difference)**".to_string()
            }
        };
        let ours_text = if o.passed() {
            "pass".to_string()
        } else {
            bad += 1;
            "**FAIL**".to_string()
        };
        table.push_str(&format!("| {} | {theirs_text} | {ours_text} |\n", t.id));
        if let Err(f) = &t.outcome {
            details.push_str(&scenario::suite::failure_text(&t.path, f, scenario::suite::Style { color: false }));
        }
    }
    let not_compared: usize = skipped.values().sum();
    table.push_str(&format!("\n{} scenarios compared; {not_compared} not compared:\n", eligible.len()));
    for (why, n) in &skipped {
        table.push_str(&format!("- {n}: {why}\n"));
    }
    print!("{table}");
    if !details.is_empty() {
        println!("\nWhat the external directory answered where it differs:\n\n{details}");
    }
    if let Some(p) = &a.table {
        std::fs::write(p, &table).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.junit {
        std::fs::write(p, scenario::suite::junit(&theirs)).with_context(|| format!("writing {}", p.display()))?;
    }
    if bad > 0 {
        eprintln!("{bad} unexplained difference(s)");
        std::process::exit(1);
    }
    Ok(())
}

/// A running lab's lab.json (what `lab up` wrote in its state directory), read up to its bound.
fn lab_json(dir: &std::path::Path) -> Result<serde_json::Value> {
    let path = dir.join("lab.json");
    let bytes = files::read(&path, files::LAB_JSON_MAX)
        .with_context(|| format!("reading {} (is a lab running? `lab up` writes it)", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not the JSON `lab up` writes (start the lab again to rewrite it)", path.display()))
}

/// Takes the state directory for this lab: an exclusive lock on its `lab.lock` (released by
/// the kernel when the process ends, however it ends), holding this process's id. A directory
/// another running lab holds is refused before anything in it is touched — a second lab
/// would rewrite the first one's ca.pem and lab.json under its clients.
fn hold_state_dir(dir: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("lab.lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = files::read_text(&path, 64).unwrap_or_default();
            let dashboard =
                lab_json(dir).ok().and_then(|v| v["dashboard"].as_str().map(|d| format!(", dashboard {d}"))).unwrap_or_default();
            bail!(
                "the state directory {} is in use by a running lab (process {}{dashboard}): stop that lab first, or give this one another --state-dir",
                dir.display(),
                pid.trim()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
    }
    f.set_len(0)?;
    write!(f, "{}", std::process::id())?;
    Ok(f)
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// The attributes `lab dcs --object` shows: what replicates (and when), and what each DC
/// keeps for itself.
const DC_VIEW: &[&str] = &["uSNChanged", "whenChanged", "pwdLastSet", "lockoutTime", "badPwdCount", "description"];

async fn dcs(a: DcsArgs) -> Result<()> {
    use ldap3::{Scope, SearchEntry};
    let (http, info, token) = lab_client(&a.state_dir).await?;
    let https = info["tenant"]["https"].as_str().unwrap_or_default().to_string();
    if a.replicate {
        let r = http
            .post(format!("{https}/lab/adds/replication"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "action": "now" }))
            .send()
            .await?;
        let body: serde_json::Value = r.json().await?;
        if let Some(m) = body["error"]["message"].as_str() {
            bail!("{m}");
        }
        let taken: u64 = body["passes"].as_array().into_iter().flatten().filter_map(|p| p["objects"].as_u64()).sum();
        println!("replicated now: {taken} object(s) taken\n");
    }
    let view: serde_json::Value = http.get(format!("{https}/lab/adds/dcs")).bearer_auth(&token).send().await?.json().await?;
    if let Some(r) = view["replication"].as_object() {
        println!("replication every {}s of the lab clock{}", r["intervalSeconds"], if r["paused"] == true { " (paused)" } else { "" });
    }
    let adds = &info["adds"];
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let ca = files::read(&a.state_dir.join("ca.pem"), files::PEM_MAX).context("reading the lab CA")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile_certs(&ca)? {
        roots.add(c)?;
    }
    let tls = Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
    for (dc, url) in view["value"].as_array().into_iter().flatten().zip(adds["dcs"].as_array().into_iter().flatten()) {
        let role = if dc["pdc"] == true { "  PDC emulator" } else { "" };
        println!(
            "{:<5} {:<5} highestCommittedUSN {:<8} {}{role}",
            s(&dc["name"]),
            s(&dc["state"]),
            dc["highestCommittedUSN"],
            s(&url["ldaps"])
        );
        let Some(object) = &a.object else { continue };
        if dc["state"] == "down" {
            continue;
        }
        let ldaps = s(&url["ldaps"]).replace("127.0.0.1", "localhost");
        let (conn, mut l) = ldap_dial::connect(&ldaps, ldap_dial::Security::Url, tls.clone(), std::time::Duration::from_secs(10))
            .await
            .with_context(|| format!("connecting to {ldaps}"))?;
        ldap3::drive!(conn);
        l.simple_bind(&s(&adds["admin_dn"]), &s(&adds["admin_password"])).await?.success().context("bind")?;
        let (base, scope, filter) = if object.contains('=') {
            (object.clone(), Scope::Base, "(objectClass=*)".to_string())
        } else {
            let v = ldap3::ldap_escape(object);
            (s(&adds["base_dn"]), Scope::Subtree, format!("(|(sAMAccountName={v})(userPrincipalName={v}))"))
        };
        let (found, _) = l.search(&base, scope, &filter, DC_VIEW.to_vec()).await?.success()?;
        match found.into_iter().next().map(SearchEntry::construct) {
            None => println!("      {object}: not on this DC"),
            Some(e) => {
                let shown: Vec<String> =
                    DC_VIEW.iter().filter_map(|k| e.attrs.get(*k).and_then(|v| v.first()).map(|v| format!("{k} {v}"))).collect();
                println!("      {}: {}", e.dn, shown.join(", "));
            }
        }
        let _ = l.unbind().await;
    }
    Ok(())
}

async fn sync(a: SyncArgs) -> Result<()> {
    let (http, info, token) = lab_client(&a.state_dir).await?;
    let t = &info["tenant"];
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let body = serde_json::json!({ "policyType": if a.initial { "Initial" } else { "Delta" } });
    let r = http.post(format!("{}/lab/sync", s(&t["https"]))).bearer_auth(&token).json(&body).send().await?;
    let status = r.status();
    let report: serde_json::Value = r.json().await?;
    if !status.is_success() {
        bail!("the tenant answered {status}: {}", report["error"]["message"].as_str().unwrap_or_default());
    }
    if a.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "{} cycle: {} added, {} updated, {} deleted, {} passwords",
        s(&report["policyType"]),
        report["added"],
        report["updated"],
        report["deleted"],
        report["passwords"]
    );
    for e in report["errors"].as_array().into_iter().flatten() {
        println!("  error {}: {} — {}", s(&e["code"]), s(&e["distinguishedName"]), s(&e["message"]));
    }
    Ok(())
}

async fn up(a: UpArgs) -> Result<()> {
    let mut signals = Signals::install()?;
    if a.exit_with_parent.unwrap_or(a.json) {
        signals.parent = Some(std::os::unix::process::parent_id());
    }
    let state_dir = a.state_dir.clone();
    let adds_ldif = match &a.adds_ldif {
        Some(p) => {
            Some((p.display().to_string(), files::read_text(p, files::LDIF_MAX).with_context(|| format!("reading {}", p.display()))?))
        }
        None => None,
    };
    let mut cfg = LabConfig {
        ldap: a.ldap,
        ldaps: a.ldaps,
        https: a.https,
        http: a.http,
        state_dir: a.state_dir.clone(),
        clock: if a.frozen_clock { Clock::frozen(Clock::lab_epoch()) } else { Clock::running() },
        seed: a.seed,
        adds_ldif,
        tls_files: a.tls_cert.zip(a.tls_key),
        engine: !a.no_engine,
        password_writeback: true,
        load_users: 0,
        source_anchor: a.source_anchor,
        presynced: !a.unsynced,
        sync_scope: (!a.sync_ou.is_empty()).then(|| a.sync_ou.clone()),
        sync_schedule: a.external.adds.is_none(),
        external_adds: a.external.external()?,
        limits: Default::default(),
        hostnames: vec![],
        tls_identity: None,
        resettable: true,
        sign_in: a.sign_in,
        pta_agents: usize::from(a.pta_agents),
        sync_agents: a.agent,
        dcs: usize::from(a.dcs),
        dc_listeners: vec![],
        forests: usize::from(a.forests),
        child_domain: a.child_domain,
        domain_listeners: vec![],
    };
    if cfg.external_adds.is_some() && cfg.adds_ldif.is_some() {
        bail!("--adds-ldif is for the built-in AD DS; an external directory is seeded with the testlab");
    }
    let guided = match &a.scenario {
        Some(p) => Some((p.clone(), scenario::suite::load(p).map_err(|e| anyhow::anyhow!("{e}\n{}", e.detail))?)),
        None => None,
    };
    if let Some(anchor) = guided.as_ref().and_then(|(_, s)| s.source_anchor) {
        cfg.source_anchor = anchor;
    }
    if let Some(agent) = guided.as_ref().and_then(|(_, s)| s.given.agent) {
        cfg.sync_agents = agent.lab();
    }
    if let Some(n) = guided.as_ref().and_then(|(_, s)| s.given.dcs) {
        cfg.dcs = usize::from(n);
    }
    if let Some((_, s)) = &guided {
        cfg.forests = usize::from(s.given.forests.unwrap_or(cfg.forests as u8));
        cfg.child_domain |= s.given.child_domain;
    }
    // DC2, DC3, … a thousand ports above DC1's each (2389/2636, …), when DC1's are fixed
    cfg.dc_listeners = (1..cfg.dcs as u16)
        .map(|i| {
            let at = |a: std::net::SocketAddr| {
                if a.port() == 0 { a } else { std::net::SocketAddr::new(a.ip(), a.port().saturating_add(1000 * i)) }
            };
            (at(cfg.ldap), at(cfg.ldaps))
        })
        .collect();
    let exercise = match &a.exercise {
        Some(name) => {
            let x = shelf(a.exercises.clone()).get(name).map_err(|e| anyhow::anyhow!(e))?;
            scenario::exercise::configure(&mut cfg, &x);
            Some(x)
        }
        None => None,
    };
    cfg.hostnames = a.hostname.clone();
    let plan = Plan {
        cfg,
        frozen_clock: a.frozen_clock,
        exercise: a.exercise.clone().map(|name| (name, a.exercises.clone())),
        guided: guided.as_ref().map(|(p, _)| p.clone()),
    };
    // every input read and checked: now the state directory. One directory, one lab: held
    // until this process ends
    let _held = hold_state_dir(&state_dir)?;
    let lab = plan.start(plan.cfg.clone()).await?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&lab.info)?)?;
    } else {
        print_summary(&mut out, &lab.info, lab.adds.is_none())?;
    }
    // --json prints exactly one line; the guide is for people
    if let Some((path, s)) = guided.as_ref().filter(|_| !a.json) {
        let text = files::read_text(path, files::SCENARIO_MAX)?;
        let steps = text.find("\nsteps:").map(|i| &text[i + 1..]).unwrap_or("");
        writeln!(
            out,
            "\nScenario {} — {}\n{}\nThe lab is set up as its `given:` says; play these steps by hand:\n{steps}",
            path.display(),
            s.name,
            s.about.trim()
        )?;
    }
    if let Some(x) = exercise.as_ref().filter(|_| !a.json) {
        writeln!(out, "\n{}\nThe dashboard ({}) ticks each task as you do it.", exercise_guide(x), lab.info.dashboard)?;
    }
    out.flush()?;
    drop(out);
    let (_never, stop) = tokio::sync::watch::channel(false);
    keep(&plan, lab, Some(&mut signals), stop, a.json).await
}

/// How `lab up` and `lab classroom` start a lab — and start it again on a reset.
struct Plan {
    cfg: LabConfig,
    frozen_clock: bool,
    /// The exercise's name and where it is looked up (read again for each start).
    exercise: Option<(String, Option<PathBuf>)>,
    /// A scenario whose `given:` the lab is set up as.
    guided: Option<PathBuf>,
}

impl Plan {
    /// Starts the lab with `cfg` (the plan's, or a reset's: the same listeners and CA), sets
    /// it up as the exercise or scenario says, and writes lab.json once it is ready.
    async fn start(&self, mut cfg: LabConfig) -> Result<Lab> {
        cfg.clock = if self.frozen_clock { Clock::frozen(Clock::lab_epoch()) } else { Clock::running() };
        let state_dir = cfg.state_dir.clone();
        // a lab.json left by an earlier lab would say "up" before this one is (`lab wait`)
        let _ = std::fs::remove_file(state_dir.join("lab.json"));
        let mut lab = Lab::start(cfg).await?;
        for w in &lab.warnings {
            eprintln!("warning: {w}");
        }
        if let Some((name, dir)) = &self.exercise {
            let x = shelf(dir.clone()).get(name).map_err(|e| anyhow::anyhow!(e))?;
            scenario::exercise::begin(&lab, x).await.map_err(|e| anyhow::anyhow!("exercise {name}: {e}"))?;
            lab.info.exercise = Some(name.clone());
        }
        if let Some(path) = &self.guided {
            let s = scenario::suite::load(path).map_err(|e| anyhow::anyhow!("{e}\n{}", e.detail))?;
            let ca_pem = std::fs::read(&lab.info.adds.ca_cert)?;
            let target = scenario::run::Target { info: lab.info.clone(), external_adds: lab.adds.is_none(), ca_pem };
            let mut runner = scenario::run::Runner::new(&target).map_err(|e| anyhow::anyhow!(e.0))?;
            runner.prepare(&s).await.map_err(|e| anyhow::anyhow!("{}: given: {}", path.display(), e.0))?;
        }
        // what `lab sync` and other tools need to find this lab (private: it holds passwords)
        write_private(&state_dir.join("lab.json"), serde_json::to_string_pretty(&lab.info)?.as_bytes())?;
        Ok(lab)
    }
}

/// Runs a started lab until the signals (or `stop`) say so, resetting it whenever asked:
/// stopped, then started again where it was, with its CA, ports and URLs. Stops it at the end.
async fn keep(
    plan: &Plan,
    mut lab: Lab,
    mut signals: Option<&mut Signals>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    quiet: bool,
) -> Result<()> {
    loop {
        let signalled = async {
            match signals.as_deref_mut() {
                Some(s) => s.wait().await,
                None => std::future::pending().await,
            }
        };
        let reset = tokio::select! {
            _ = signalled => false,
            _ = stop.wait_for(|s| *s) => false,
            _ = lab.reset_requested() => true,
        };
        if !reset {
            lab.stop().await;
            return Ok(());
        }
        let again = lab.config_for_reset(plan.cfg.clone());
        lab.stop().await;
        lab = plan.start(again).await.context("starting the lab again after a reset")?;
        if !quiet {
            println!("The lab was reset to its start (the same CA, ports and URLs): {}", lab.info.dashboard);
        }
    }
}

/// A client of a running lab, from its state directory: the HTTP client trusting its CA,
/// its lab.json, and its Global Administrator's token (what the lab's switches need).
async fn lab_client(state_dir: &std::path::Path) -> Result<(reqwest::Client, serde_json::Value, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let info = lab_json(state_dir)?;
    let ca = files::read(&state_dir.join("ca.pem"), files::PEM_MAX).context("reading the lab CA")?;
    let http = reqwest::Client::builder().tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca)?).build()?;
    let t = &info["tenant"];
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let form = [
        ("grant_type", "password".to_string()),
        ("client_id", s(&t["client_id"])),
        ("username", s(&t["admin_upn"])),
        ("password", s(&t["admin_password"])),
        ("scope", "https://graph.microsoft.com/.default".to_string()),
    ];
    let token: serde_json::Value = http
        .post(format!("{}/oauth2/v2.0/token", s(&t["authority"])))
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            let why = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.to_string());
            anyhow::anyhow!(
                "the lab's tenant at {} does not answer ({why}): is the lab running? (state dir {})",
                s(&t["https"]),
                state_dir.display()
            )
        })?
        .json()
        .await?;
    let Some(token) = token["access_token"].as_str() else { bail!("no token for the lab's administrator: {token}") };
    Ok((http, info, token.to_string()))
}

/// `lab reset`: `POST /lab/reset` as the lab's administrator, then waits for the lab that
/// starts again in its place (a new lab.json, its listeners answering).
async fn reset(state_dir: &std::path::Path, timeout: u64) -> Result<()> {
    let (http, info, token) = lab_client(state_dir).await?;
    let before = std::fs::metadata(state_dir.join("lab.json")).and_then(|m| m.modified()).ok();
    let https = info["tenant"]["https"].as_str().unwrap_or_default();
    let r = http.post(format!("{https}/lab/reset")).bearer_auth(&token).send().await?;
    let status = r.status();
    if status != reqwest::StatusCode::ACCEPTED {
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        bail!("the lab answered {status}: {}", body["error"]["message"].as_str().unwrap_or_default());
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    // the lab rewrites lab.json once it is up again
    loop {
        let now = std::fs::metadata(state_dir.join("lab.json")).and_then(|m| m.modified()).ok();
        if now.is_some() && now != before {
            break;
        }
        if std::time::Instant::now() > until {
            bail!("the lab in {} did not come back within {timeout} s (see its `lab up` output)", state_dir.display());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    wait(state_dir, timeout).await
}

/// `lab classroom`: N labs in this process, each its own state directory, ports and CA,
/// each reset on its own; the list for the trainer, then run until a signal.
async fn classroom(a: ClassroomArgs) -> Result<()> {
    let mut signals = Signals::install()?;
    if a.exit_with_parent.unwrap_or(a.json) {
        signals.parent = Some(std::os::unix::process::parent_id());
    }
    let exercise = match &a.exercise {
        Some(name) => Some(shelf(a.exercises.clone()).get(name).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let mut plans = vec![];
    let mut held = vec![];
    for n in 1..=a.labs {
        let port = |k: u16| -> Result<SocketAddr> {
            let p = match a.first_port {
                0 => 0,
                first => first.checked_add(4 * (n - 1) + k).context("--first-port: the labs' ports run past 65535")?,
            };
            Ok(SocketAddr::new(a.listen, p))
        };
        let dir = a.state_dir.join(format!("lab{n}"));
        let mut cfg = LabConfig::ephemeral(dir.clone());
        (cfg.ldap, cfg.ldaps, cfg.https, cfg.http) = (port(0)?, port(1)?, port(2)?, port(3)?);
        cfg.engine = true;
        cfg.sync_schedule = true;
        cfg.resettable = true;
        cfg.hostnames = a.hostname.iter().map(|h| h.replace("{n}", &n.to_string())).collect();
        if let Some(x) = &exercise {
            scenario::exercise::configure(&mut cfg, x);
        }
        held.push(hold_state_dir(&dir)?);
        plans.push(Plan { cfg, frozen_clock: false, exercise: a.exercise.clone().map(|e| (e, a.exercises.clone())), guided: None });
    }
    let mut labs = vec![];
    for p in &plans {
        labs.push(p.start(p.cfg.clone()).await?);
    }
    let mut out = std::io::stdout().lock();
    if a.json {
        let all: Vec<&labkit::LabInfo> = labs.iter().map(|l| &l.info).collect();
        writeln!(out, "{}", serde_json::json!({ "labs": all }))?;
    } else {
        print_classroom(&mut out, &labs, &a.state_dir)?;
    }
    out.flush()?;
    drop(out);
    let (stop_all, stop) = tokio::sync::watch::channel(false);
    let mut kept = tokio::task::JoinSet::new();
    let plans: Vec<Arc<Plan>> = plans.into_iter().map(Arc::new).collect();
    for (plan, lab) in plans.iter().cloned().zip(labs) {
        let stop = stop.clone();
        let quiet = a.json;
        kept.spawn(async move {
            // the classroom's signals stop every lab, through `stop`
            keep(&plan, lab, None, stop, quiet).await
        });
    }
    signals.wait().await;
    let _ = stop_all.send(true);
    let mut first_error = Ok(());
    while let Some(done) = kept.join_next().await {
        if let Ok(Err(e)) = done
            && first_error.is_ok()
        {
            first_error = Err(e);
        }
    }
    drop(held);
    first_error
}

/// The trainer's list: per lab what its trainee needs.
fn print_classroom(out: &mut impl Write, labs: &[Lab], state_dir: &std::path::Path) -> Result<()> {
    writeln!(out, "hybrid-lab classroom: {} labs (Ctrl-C stops them all)\n", labs.len())?;
    for (i, lab) in labs.iter().enumerate() {
        let (info, n) = (&lab.info, i + 1);
        writeln!(out, "lab {n}  dashboard {}", info.dashboard)?;
        writeln!(out, "       SSPR      {}", info.sspr)?;
        writeln!(out, "       sign in   {} / {}", info.tenant.admin_upn, info.tenant.admin_password)?;
        writeln!(out, "       LDAPS     {}  ({} / {})", info.adds.ldaps, info.adds.admin_dn, info.adds.admin_password)?;
        writeln!(out, "       CA        {}", info.adds.ca_cert.display())?;
        if let Some(x) = &info.exercise {
            writeln!(out, "       exercise  {x}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Give each trainee their lab's lines and its CA file (to import in the browser, or for LDAPTLS_CACERT).")?;
    writeln!(out, "Put one lab back to its start, with the same CA, ports and URLs: lab reset --state-dir {}/labN", state_dir.display())?;
    Ok(())
}

/// `lab wait`: lab.json exists (written once every listener is ready) and its LDAPS and
/// HTTPS endpoints take a connection.
async fn wait(state_dir: &std::path::Path, timeout: u64) -> Result<()> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    loop {
        if let Ok(info) = lab_json(state_dir) {
            let addr = |url: &str| url.split("://").nth(1).map(|r| r.trim_end_matches('/').replace("localhost", "127.0.0.1"));
            let ends = [info["adds"]["ldaps"].as_str().and_then(addr), info["tenant"]["https"].as_str().and_then(addr)];
            let mut up = true;
            for a in ends.iter().flatten() {
                up &= tokio::net::TcpStream::connect(a.as_str()).await.is_ok();
            }
            if up {
                println!("the lab is up: {}", info["dashboard"].as_str().unwrap_or_default());
                return Ok(());
            }
        }
        if std::time::Instant::now() > until {
            bail!(
                "no lab came up in {} within {timeout} s (is `lab up --state-dir {}` running?)",
                state_dir.display(),
                state_dir.display()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// An exercise for people: its title, what it is about, and the tasks.
fn exercise_guide(x: &scenario::exercise::Exercise) -> String {
    let mut g = format!("Exercise: {}\n{}\n", x.title, x.about.trim());
    for (i, t) in x.tasks.iter().enumerate() {
        g.push_str(&format!("  {}. {}\n", i + 1, t.value.title));
    }
    g
}

fn shelf(dir: Option<PathBuf>) -> scenario::exercise::Shelf {
    dir.map_or(scenario::exercise::Shelf::BuiltIn, scenario::exercise::Shelf::Dir)
}

/// `lab exercises`: each exercise's name, title and number of tasks.
fn exercises(shelf: &scenario::exercise::Shelf) -> Result<()> {
    let found = shelf.list().with_context(|| format!("listing the exercises in {shelf}"))?;
    if found.is_empty() {
        bail!("no exercise files (*.yaml) in {shelf}");
    }
    let mut bad = 0;
    for (name, x) in &found {
        match x {
            Ok(x) => println!("{name:<24} {} ({} task{})", x.title, x.tasks.len(), if x.tasks.len() == 1 { "" } else { "s" }),
            Err(e) => {
                bad += 1;
                eprintln!("{e}");
            }
        }
    }
    println!("\nStart one with `lab up --exercise NAME`; its checklist is on the dashboard.");
    if bad > 0 {
        bail!("{bad} of {} exercise files are invalid", found.len());
    }
    Ok(())
}

fn print_summary(out: &mut impl Write, info: &labkit::LabInfo, external_adds: bool) -> Result<()> {
    let a = &info.adds;
    writeln!(out, "hybrid-lab is up (Ctrl-C to stop)\n")?;
    writeln!(out, "Dashboard {}   (sign in as {} / {})", info.dashboard, info.tenant.admin_upn, info.tenant.admin_password)?;
    writeln!(out, "SSPR      {}   (\"Can't access your account?\")\n", info.sspr)?;
    if external_adds {
        writeln!(out, "AD DS  {} (external: the testlab seeded into it; no directory sync)", a.ldaps)?;
    } else {
        writeln!(out, "AD DS  {} (StartTLS)  {}", a.ldap, a.ldaps)?;
        for dc in a.dcs.iter().skip(1) {
            writeln!(out, "       {}   {} (StartTLS)  {}  (replica; DC1 holds the PDC emulator role)", dc.name, dc.ldap, dc.ldaps)?;
        }
        for d in a.domains.iter().skip(1) {
            let kind = if d.forest == d.domain { "a forest of its own" } else { "in testlab's forest" };
            writeln!(out, "       domain {} ({}, {kind}), admin {} / {}", d.domain, d.netbios, d.admin_dn, d.admin_password)?;
            for dc in &d.dcs {
                writeln!(out, "         {}  {} (StartTLS)  {}", dc.name, dc.ldap, dc.ldaps)?;
            }
        }
    }
    writeln!(out, "       domain {} ({}), base {}", a.domain, a.netbios, a.base_dn)?;
    writeln!(out, "       admin  {} / {}", a.admin_dn, a.admin_password)?;
    writeln!(out, "       CA     {}\n", a.ca_cert.display())?;
    let t = &info.tenant;
    writeln!(out, "Tenant {} (HTTPS, the same CA)  {}", t.https, t.http)?;
    writeln!(out, "       authority {}", t.authority)?;
    writeln!(out, "       Graph     {}", t.graph)?;
    writeln!(out, "       admin     {} / {}", t.admin_upn, t.admin_password)?;
    writeln!(out, "       app       client_id {} / secret {}", t.client_id, t.client_secret)?;
    match info.sign_in {
        labkit::SignInMethod::PassThroughAuthentication => {
            let agents: Vec<&str> = info.pta_agents.iter().map(|a| a.machine_name.as_str()).collect();
            writeln!(out, "       sign-in   pass-through authentication (agents {}; docs/pta.md)\n", agents.join(", "))?;
        }
        labkit::SignInMethod::PasswordHashSync => writeln!(out, "       sign-in   password hash sync\n")?,
    }
    writeln!(out, "Seeded accounts:")?;
    for u in &info.users {
        let name = if u.sam.is_empty() { &u.upn } else { &u.sam };
        writeln!(out, "  {:<34} {:<20} {}", name, u.password.as_deref().unwrap_or("(hash only)"), u.about)?;
    }
    writeln!(
        out,
        "\nTry:\n  LDAPTLS_CACERT={} ldapwhoami -H {} -x -D '{}\\User1' -w 'Summer-Lake-41'",
        a.ca_cert.display(),
        a.ldaps,
        a.netbios
    )?;
    writeln!(
        out,
        "  ldapsearch -H {} -x -D '{}' -w '{}' -b '{}' '(objectCategory=person)' sAMAccountName",
        if external_adds { &a.ldaps } else { &a.ldap },
        a.admin_dn,
        a.admin_password,
        a.base_dn
    )?;
    writeln!(
        out,
        "  curl -s --cacert {} {}/oauth2/v2.0/token -d grant_type=password -d client_id={} -d username=user1@testlab.example -d password=Summer-Lake-41 -d scope=https://graph.microsoft.com/.default",
        a.ca_cert.display(),
        t.authority,
        t.client_id
    )?;
    writeln!(
        out,
        "  curl -s --cacert {} {}/lab/sspr/flows -H 'content-type: application/json' -d '{{\"userPrincipalName\":\"user5@testlab.onmicrosoft.com\"}}'   # SSPR, step 1",
        a.ca_cert.display(),
        t.https
    )?;
    // (the outbox holds everyone's codes: its API and page are the lab administrator's)
    writeln!(out, "  {}/portal/outbox        # the codes SSPR sends (sign in as {})", t.https, t.admin_upn)?;
    let state = a.ca_cert.parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".lab".into());
    if !external_adds {
        writeln!(out, "  lab sync --state-dir {state}          # a sync cycle now (the engine runs one every 30 min, hashes every 2)")?;
    }
    writeln!(out, "Guided scenarios: scenarios/ (start with scenarios/sspr/cloud-only-user-resets.yaml);")?;
    writeln!(out, "  `lab up --scenario FILE` sets a scenario up for you to play by hand, `lab run` plays them all.")?;
    Ok(())
}

/// SIGINT and SIGTERM, listened for from the moment `lab up` begins: a signal that comes
/// right after the JSON line (a fixture stopping its lab at once) must find the handler in
/// place, or the process dies of it instead of exiting 0.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    /// The parent whose end ends the lab too (`--exit-with-parent`).
    parent: Option<u32>,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())?, parent: None })
    }

    async fn wait(&mut self) {
        // A parent that ends leaves the lab to a reaper (init or a subreaper): its parent id
        // changes. Looked at every 250 ms: a signal on the parent's death (PR_SET_PDEATHSIG)
        // would follow the *thread* that spawned the lab, which ends with a test while a
        // lab shared by the rest of the run must live on.
        let parent = self.parent;
        let orphaned = async move {
            let Some(parent) = parent else { return std::future::pending().await };
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
            while std::os::unix::process::parent_id() == parent {
                tick.tick().await;
            }
        };
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = orphaned => {}
        }
    }
}

async fn export(mut a: ExportArgs) -> Result<()> {
    use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
    use ldap3::controls::RawControl;
    use ldap3::{Scope, SearchEntry};

    if let Some(dir) = &a.state_dir {
        let info = lab_json(dir)?;
        let adds = &info["adds"];
        let field =
            |k: &str| adds[k].as_str().map(str::to_string).with_context(|| format!("{}: no adds.{k}", dir.join("lab.json").display()));
        a.ldaps = field("ldaps")?;
        a.bind_dn = field("admin_dn")?;
        a.password = field("admin_password")?;
        a.ca = PathBuf::from(field("ca_cert")?);
    }

    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = files::read(&a.ca, files::PEM_MAX).with_context(|| format!("reading the lab CA {}", a.ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile_certs(&pem)? {
        roots.add(c)?;
    }
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let (conn, mut ldap) = ldap_dial::connect(&a.ldaps, ldap_dial::Security::Url, Arc::new(tls), std::time::Duration::from_secs(10))
        .await
        .with_context(|| format!("connecting to {}", a.ldaps))?;
    ldap3::drive!(conn);
    ldap.simple_bind(&a.bind_dn, &a.password).await?.success().context("bind")?;
    let (root, _) = ldap.search("", Scope::Base, "(objectClass=*)", vec!["defaultNamingContext"]).await?.success()?;
    let Some(base) =
        root.into_iter().next().and_then(|e| SearchEntry::construct(e).attrs.remove("defaultNamingContext")).and_then(|mut v| v.pop())
    else {
        bail!("the rootDSE has no defaultNamingContext");
    };
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(500))];
    let export_ctrl = RawControl { ctype: ad_ds::session::OID_LAB_EXPORT_SECRETS.into(), crit: true, val: None };
    let mut search =
        ldap.with_controls(vec![export_ctrl]).streaming_search_with(adapters, &base, Scope::Subtree, "(objectClass=*)", vec!["*"]).await?;
    let mut text = format!("version: 1\n# hybrid-lab export of {base} (password hashes included: keep this file private)\n\n");
    let mut n = 0usize;
    while let Some(e) = search.next().await? {
        let e = SearchEntry::construct(e);
        let mut attrs: Vec<(String, Vec<Vec<u8>>)> =
            e.attrs.into_iter().map(|(k, v)| (k, v.into_iter().map(String::into_bytes).collect())).chain(e.bin_attrs).collect();
        attrs.sort_by_key(|(k, _)| (!k.eq_ignore_ascii_case("objectClass"), k.to_ascii_lowercase()));
        ad_ds::ldif::write_entry(&mut text, &e.dn, &attrs);
        n += 1;
    }
    search.finish().await.success().context("export search")?;
    ldap.unbind().await?;
    match a.output {
        Some(p) => {
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("exported {n} objects to {}", p.display());
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}

fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        bail!("no certificate in the CA file");
    }
    Ok(certs)
}
