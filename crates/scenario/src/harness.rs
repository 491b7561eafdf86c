//! Scenario files as `cargo test` tests, for this workspace and for any other project: one
//! call turns a folder of YAML files into libtest-mimic trials — one test per file, named by
//! its path under the folder — so `--list`, name filters, `--exact`, `--ignored` and
//! nextest's `--partition count:K/N` work as for any test. A failure prints the step's
//! file:line:column with expected and actual, then the redacted transcript.
//!
//! ```no_run
//! // tests/scenarios.rs, with `[[test]] name = "scenarios" harness = false` in Cargo.toml
//! fn main() {
//!     scenario::harness::run_folder(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
//! }
//! ```
//!
//! With `HYBRID_LAB_ADDS=ldaps://HOST:PORT` and `HYBRID_LAB_ADDS_CA=FILE` (and optionally
//! `HYBRID_LAB_ADDS_ADMIN`, `HYBRID_LAB_ADDS_PASSWORD`) the scenarios run against that
//! directory instead, one at a time (one directory is seeded before each); those it cannot
//! play, or that say Samba differs, are ignored.

// The example's `fn main` is the point: a `harness = false` test target is a main.
#![allow(clippy::needless_doctest_main)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::external::External;
use crate::suite;

fn external() -> Option<External> {
    let ldaps = std::env::var("HYBRID_LAB_ADDS").ok()?;
    let ca = std::env::var("HYBRID_LAB_ADDS_CA").expect("HYBRID_LAB_ADDS needs HYBRID_LAB_ADDS_CA");
    Some(External {
        ldaps,
        admin_dn: std::env::var("HYBRID_LAB_ADDS_ADMIN").unwrap_or_else(|_| "CN=Administrator,CN=Users,DC=testlab,DC=example".into()),
        admin_password: std::env::var("HYBRID_LAB_ADDS_PASSWORD").unwrap_or_else(|_| labkit::testlab::ADMIN_PASSWORD.into()),
        ca_pem: std::fs::read(&ca).unwrap_or_else(|e| panic!("{ca}: {e}")),
    })
}

/// Runs every scenario file under `dir` as a test, with the command line's test arguments,
/// and exits the process with the result (the `main` of a `harness = false` test).
pub fn run_folder(dir: impl AsRef<Path>) -> ! {
    run_folder_also_under_cloud_sync(dir, &[])
}

/// [`run_folder`], and the files under the sub-folders `also` (e.g. `["writeback", "sspr"]`)
/// a second time under Cloud Sync's provisioning agent, as tests named
/// `cloud-sync/{path}`: the same files, the runner's agent parameter (a scenario that names
/// its agent in `given:` runs once; one marked `cloud_sync_differs` must fail there).
#[allow(deprecated)] // ring on purpose: docs/security.md, "ring, not AWS-LC, for TLS"
pub fn run_folder_also_under_cloud_sync(dir: impl AsRef<Path>, also: &[&str]) -> ! {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = Arguments::from_args();
    let root: PathBuf = dir.as_ref().to_path_buf();
    let files = suite::discover(std::slice::from_ref(&root)).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let rt = Arc::new(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime"));
    let ext = external().map(Arc::new);
    let can = ext.as_ref().map(|e| rt.block_on(labkit::external::probe(e)).unwrap_or_else(|m| panic!("{}: {m}", e.ldaps)));
    if ext.is_some() {
        args.test_threads = Some(1);
    }
    // the second runs: files under `also` that name no agent of their own (external
    // directories: Connect's runs only)
    let twice: Vec<PathBuf> = files
        .iter()
        .filter(|f| ext.is_none() && also.iter().any(|a| suite::test_id(&root, f).starts_with(&format!("{a}/"))))
        .filter(|f| suite::load(f).is_ok_and(|s| s.given.agent.is_none()))
        .cloned()
        .collect();
    let runs = files
        .into_iter()
        .map(|f| (f, labkit::SyncAgents::ConnectSync))
        .chain(twice.into_iter().map(|f| (f, labkit::SyncAgents::CloudSync)));
    let trials = runs
        .map(|(f, agents)| {
            let (rt, root, ext) = (rt.clone(), root.clone(), ext.clone());
            let id = match agents {
                labkit::SyncAgents::CloudSync => format!("cloud-sync/{}", suite::test_id(&root, &f)),
                _ => suite::test_id(&root, &f),
            };
            let skip = can.is_some_and(|can| {
                suite::load(&f).is_ok_and(|s| crate::external::ineligible(&s, can).is_some() || s.samba_differs.is_some())
            });
            Trial::test(id, move || {
                let r = match &ext {
                    Some(ext) => rt.block_on(suite::run_all_external(&root, vec![f.clone()], ext, can.expect("probed"))).remove(0),
                    None => rt.block_on(suite::run_file_as(&root, &f, agents)),
                };
                match &r.outcome {
                    Ok(()) => Ok(()),
                    Err(fail) => Err(Failed::from(format!(
                        "{}\n--- transcript (passwords redacted) ---\n{}",
                        suite::failure_text(&r.path, fail, suite::Style { color: false }),
                        r.transcript
                    ))),
                }
            })
            .with_ignored_flag(skip)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}
