//! Many scenarios: finding the files, running each in its own lab (in parallel), and the
//! reports — a human one with expected/actual for each failure, and JUnit XML for CI.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::{self, ParseError};
use crate::run::{self, Failure};

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The file, as given or found (relative to the working directory when it can be).
    pub path: String,
    /// The test name: the path under the scenarios root, without `.yaml`.
    pub id: String,
    pub name: String,
    pub outcome: Result<(), Failure>,
    pub duration: Duration,
    /// Of `duration`, the time its lab took to start.
    pub lab_start: Duration,
    /// The redacted transcript.
    pub transcript: String,
    /// Not run, and why (a scenario an external directory cannot play).
    pub skipped: Option<String>,
    /// Came out differently under Cloud Sync's agent, as the scenario's `cloud_sync_differs`
    /// says it does, and why (counted as passed: a known difference).
    pub differs: Option<String>,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// Every `.yaml`/`.yml` file under the given files and directories, sorted.
pub fn discover(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{}: no such file or directory", p.display())));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// The test name of a file: its path under `root` without the extension (`reset/sspr-cloud`).
pub fn test_id(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    rel.with_extension("").to_string_lossy().replace('\\', "/")
}

/// Reads and parses a file, and checks what it means (`check`): the first mistake.
pub fn load(path: &Path) -> Result<model::Scenario, ParseError> {
    load_checked(path).map_err(|mut e| e.remove(0))
}

/// Reads, parses and checks a file: the scenario, or every mistake found (at least one).
pub fn load_checked(path: &Path) -> Result<model::Scenario, Vec<ParseError>> {
    let name = path.display().to_string();
    let text = crate::files::read_text(path, crate::files::SCENARIO_MAX)
        .map_err(|e| vec![ParseError { file: name.clone(), line: 0, column: 0, message: e.to_string(), detail: String::new() }])?;
    let s = model::parse(&name, &text).map_err(|e| vec![e])?;
    let errors = crate::check::check(&name, &text, &s, path.parent().unwrap_or(Path::new(".")));
    if errors.is_empty() { Ok(s) } else { Err(errors) }
}

/// Checks files without running them: every mistake in every file.
pub fn check(files: &[PathBuf]) -> Vec<ParseError> {
    files.iter().filter_map(|f| load_checked(f).err()).flatten().collect()
}

/// Parses and runs one file in a fresh lab (whose AD DS is `external` when given).
pub async fn run_file(root: &Path, path: &Path) -> ScenarioResult {
    run_file_with(root, path, None, labkit::SyncAgents::ConnectSync).await
}

/// [`run_file`] under the sync agent(s) `agents` for a scenario that names none (`lab run
/// --agent`). Under Cloud Sync a scenario with `cloud_sync_differs` must fail, and is reported
/// as that known difference; one that passes all the same is a failure (its mark is stale).
pub async fn run_file_as(root: &Path, path: &Path, agents: labkit::SyncAgents) -> ScenarioResult {
    run_file_with(root, path, None, agents).await
}

async fn run_file_with(
    root: &Path,
    path: &Path,
    external: Option<&crate::external::External>,
    agents: labkit::SyncAgents,
) -> ScenarioResult {
    let id = test_id(root, path);
    let shown = path.display().to_string();
    match load(path) {
        Err(e) => ScenarioResult {
            path: shown,
            id,
            name: String::new(),
            outcome: Err(Failure {
                step: 0,
                action: "parse".into(),
                line: e.line,
                column: e.column,
                expected: "a valid scenario".into(),
                actual: e.message,
            }),
            duration: Duration::ZERO,
            lab_start: Duration::ZERO,
            transcript: String::new(),
            skipped: None,
            differs: None,
        },
        Ok(s) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            let r = run::run_in_fresh_lab_as(&s, dir, external, agents).await;
            let known = s.cloud_sync_differs.clone().filter(|_| s.given.agent.is_none() && agents == labkit::SyncAgents::CloudSync);
            let (outcome, differs) = match (r.outcome, known) {
                (outcome, None) => (outcome, None),
                (Err(_), Some(why)) => (Ok(()), Some(why)),
                (Ok(()), Some(_)) => (
                    Err(Failure {
                        step: 0,
                        action: "cloud_sync_differs".into(),
                        line: 1,
                        column: 1,
                        expected: "a different outcome under Cloud Sync, as `cloud_sync_differs` says".into(),
                        actual: "the same as under Connect Sync: remove `cloud_sync_differs`".into(),
                    }),
                    None,
                ),
            };
            ScenarioResult {
                path: shown,
                id,
                name: s.name.clone(),
                outcome,
                duration: r.duration,
                lab_start: r.lab_start,
                transcript: r.transcript.render(),
                skipped: None,
                differs,
            }
        }
    }
}

/// Runs files, `jobs` at a time, each in its own lab; a progress bar on a terminal.
pub async fn run_all(root: &Path, files: Vec<PathBuf>, jobs: usize) -> Vec<ScenarioResult> {
    run_all_as(root, files, jobs, labkit::SyncAgents::ConnectSync).await
}

/// [`run_all`] under `agents` (see [`run_file_as`]).
pub async fn run_all_as(root: &Path, files: Vec<PathBuf>, jobs: usize, agents: labkit::SyncAgents) -> Vec<ScenarioResult> {
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} scenarios {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in files.into_iter().enumerate() {
        let (gate, root, bar) = (gate.clone(), root.to_path_buf(), bar.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let r = run_file_as(&root, &f, agents).await;
            bar.inc(1);
            if !r.passed() {
                bar.set_message(format!("(failing: {})", r.id));
            }
            (i, r)
        });
    }
    let mut out = vec![];
    while let Some(done) = set.join_next().await {
        if let Ok(r) = done {
            out.push(r);
        }
    }
    bar.finish_and_clear();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// Runs files one after another against an external directory (one directory: one at a
/// time), each in a lab of its own whose AD DS is that directory, the testlab seeded into it
/// first; scenarios it cannot play are skipped with the reason.
pub async fn run_all_external(
    root: &Path,
    files: Vec<PathBuf>,
    ext: &crate::external::External,
    can: crate::external::Capabilities,
) -> Vec<ScenarioResult> {
    let mut out = vec![];
    for f in files {
        let skipped = load(&f).ok().and_then(|s| crate::external::ineligible(&s, can));
        match skipped {
            Some(why) => {
                let s = load(&f).ok();
                out.push(ScenarioResult {
                    path: f.display().to_string(),
                    id: test_id(root, &f),
                    name: s.map(|s| s.name).unwrap_or_default(),
                    outcome: Ok(()),
                    duration: Duration::ZERO,
                    lab_start: Duration::ZERO,
                    transcript: String::new(),
                    skipped: Some(why),
                    differs: None,
                })
            }
            None => out.push(run_file_with(root, &f, Some(ext), labkit::SyncAgents::ConnectSync).await),
        }
    }
    out
}

/// Colours for a terminal (none when NO_COLOR is set or output is not a terminal).
#[derive(Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn for_stdout() -> Style {
        Style { color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// A failure, as the human report and the test harness print it.
pub fn failure_text(path: &str, f: &Failure, style: Style) -> String {
    let place = if f.step == 0 {
        format!("{path}:{}:{}: {}", f.line, f.column, f.action)
    } else {
        format!("{path}:{}:{}: step {} `{}`", f.line, f.column, f.step, f.action)
    };
    format!("{}\n  {} {}\n  {} {}\n", style.bold(&place), style.green("- expected:"), f.expected, style.red("+ actual:  "), f.actual)
}

/// The human report: one line per scenario, the failures in full, a summary.
pub fn human(results: &[ScenarioResult], style: Style) -> String {
    let mut out = String::new();
    for r in results {
        if let Some(why) = &r.skipped {
            out.push_str(&format!("SKIP {} {}\n     {why}\n", r.id, r.name));
            continue;
        }
        if let Some(why) = &r.differs {
            out.push_str(&format!(
                "{} {} ({} ms) {}\n     under Cloud Sync, as known: {why}\n",
                style.green("DIFF"),
                r.id,
                r.duration.as_millis(),
                r.name
            ));
            continue;
        }
        let mark = if r.passed() { style.green("PASS") } else { style.red("FAIL") };
        out.push_str(&format!("{mark} {} ({} ms) {}\n", r.id, r.duration.as_millis(), r.name));
        if let Err(f) = &r.outcome {
            for line in failure_text(&r.path, f, style).lines() {
                out.push_str(&format!("     {line}\n"));
            }
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let skipped = results.iter().filter(|r| r.skipped.is_some()).count();
    let total: Duration = results.iter().map(|r| r.duration).sum();
    let differ = results.iter().filter(|r| r.differs.is_some()).count();
    let skipped_text = if skipped > 0 { format!(", {skipped} skipped") } else { String::new() };
    let skipped_text = if differ > 0 { format!("{skipped_text}, {differ} of them differ under Cloud Sync as known") } else { skipped_text };
    let summary = format!(
        "{} scenario{}: {} passed, {failed} failed{skipped_text} ({} ms of scenario time)",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        results.len() - failed - skipped,
        total.as_millis()
    );
    out.push_str(&if failed == 0 { style.green(&summary) } else { style.red(&summary) });
    out.push('\n');
    out
}

/// JUnit XML: one test case per scenario, the failure's place and expected/actual in it,
/// and the redacted transcript as system-out.
pub fn junit(results: &[ScenarioResult]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("scenarios");
    for r in results {
        let status = match &r.outcome {
            Ok(()) if r.skipped.is_some() => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.skipped.clone().unwrap_or_default());
                s
            }
            Ok(()) => TestCaseStatus::success(),
            Err(f) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "{}:{}:{}: step {} `{}`: expected {}, got {}",
                    r.path, f.line, f.column, f.step, f.action, f.expected, f.actual
                ));
                s.set_description(failure_text(&r.path, f, Style { color: false }));
                s
            }
        };
        let mut case = TestCase::new(r.id.clone(), status);
        case.set_classname("scenario");
        case.set_time(r.duration);
        case.set_system_out(r.transcript.clone());
        suite.add_test_case(case);
    }
    let mut report = Report::new("hybrid-lab");
    report.add_test_suite(suite);
    report.to_string().unwrap_or_default()
}

struct ReportFailure {
    place: String,
    expected: String,
    actual: String,
}

struct ReportScenario {
    id: String,
    anchor: String,
    name: String,
    path: String,
    class: &'static str,
    label: &'static str,
    millis: u128,
    lab_millis: u128,
    skipped: Option<String>,
    failure: Option<ReportFailure>,
    /// The steps played (`#n action`), and whether it is the one that failed.
    steps: Vec<(String, bool)>,
    svg: String,
    transcript: String,
}

#[derive(askama::Template)]
#[template(path = "report.html")]
struct Report {
    total: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
    millis: u128,
    scenarios: Vec<ReportScenario>,
}

/// The HTML report: one self-contained file (no scripts, no external references) with, per
/// scenario, its result, the failure's place with expected and actual, the steps played, a
/// sequence diagram of what went over the wire (SVG) and the redacted transcript.
pub fn html(results: &[ScenarioResult]) -> String {
    use askama::Template;
    let scenarios: Vec<ReportScenario> = results
        .iter()
        .map(|r| {
            let (class, label) = match (&r.skipped, r.passed()) {
                (Some(_), _) => ("skip", "SKIP"),
                (None, true) => ("pass", "PASS"),
                (None, false) => ("fail", "FAIL"),
            };
            let failed_step = r.outcome.as_ref().err().map(|f| f.step);
            let steps = r
                .transcript
                .lines()
                .filter_map(|l| l.strip_prefix('#'))
                .filter_map(|h| h.split_once(' ').map(|(n, a)| (n.parse::<usize>().unwrap_or(0), a)))
                .filter(|(n, _)| *n > 0)
                .map(|(n, a)| (a.to_string(), Some(n) == failed_step))
                .collect();
            let items = portal::sequence::from_transcript(&r.transcript);
            ReportScenario {
                anchor: r.id.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
                id: r.id.clone(),
                name: r.name.clone(),
                path: r.path.clone(),
                class,
                label,
                millis: r.duration.as_millis(),
                lab_millis: r.lab_start.as_millis(),
                skipped: r.skipped.clone(),
                failure: r.outcome.as_ref().err().map(|f| ReportFailure {
                    place: if f.step == 0 {
                        format!("{}:{}:{}: {}", r.path, f.line, f.column, f.action)
                    } else {
                        format!("{}:{}:{}: step {} `{}`", r.path, f.line, f.column, f.step, f.action)
                    },
                    expected: f.expected.clone(),
                    actual: f.actual.clone(),
                }),
                steps,
                svg: if items.is_empty() { String::new() } else { portal::sequence::svg(&items) },
                transcript: r.transcript.clone(),
            }
        })
        .collect();
    let report = Report {
        total: results.len(),
        passed: results.iter().filter(|r| r.passed() && r.skipped.is_none()).count(),
        failed: results.iter().filter(|r| !r.passed()).count(),
        skipped: results.iter().filter(|r| r.skipped.is_some()).count(),
        millis: results.iter().map(|r| r.duration.as_millis()).sum(),
        scenarios,
    };
    report.render().unwrap_or_else(|e| format!("<p>report: {e}</p>"))
}
