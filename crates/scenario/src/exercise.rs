//! Exercises: a lab set up where a tutorial starts, and a checklist of tasks a trainee does by
//! hand in the lab's pages, each with hints and checks that decide when it is done (the checks
//! are `portal::exercise::Check`: the dashboard ticks them live). Files are YAML next to the
//! scenarios (`exercises/`), with their own JSON Schema (`docs/exercise.schema.json`); the
//! setup is the scenario language's `given:` and steps, played before the trainee arrives.

use std::path::{Path, PathBuf};

use portal::exercise::{Check, Checklist, Task};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::model::{Given, ParseError, Scenario, Step};

/// One exercise file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exercise {
    /// The title the dashboard shows.
    pub title: String,
    /// What the trainee learns, and the documentation the steps follow (links welcome).
    pub about: String,
    /// Connect was installed with its "Password writeback" optional feature (default: true).
    /// `false`: installed with directory and password hash sync only — the sync side's
    /// writeback flag off until the trainee runs Connect's configuration wizard.
    #[serde(default)]
    pub password_writeback: Option<bool>,
    /// Settings applied as an administrator would before the trainee starts (as a
    /// scenario's `given:`; e.g. the cloud half of writeback off).
    #[serde(default)]
    pub given: Given,
    /// Scenario steps played before the trainee starts (e.g. `engine.stop: {}`, a right
    /// revoked). Nothing they log counts towards the tasks.
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    pub setup: Vec<Spanned<Step>>,
    /// What the trainee does, in order; the exercise is complete when every task is done.
    #[schemars(with = "Vec<Task>")]
    pub tasks: Vec<Spanned<Task>>,
    /// A trainer's solution in the scenario language (never shown on the dashboard): the
    /// test suite plays it, answers each question with its first accepted answer, and
    /// expects every task ticked — so a shipped exercise is known to be solvable.
    #[serde(default)]
    #[schemars(with = "Vec<Step>")]
    pub solution: Vec<Spanned<Step>>,
}

/// An exercise taken apart: what the lab plays before and (in tests) after the trainee.
pub struct Parts {
    /// `given:` and the setup steps.
    pub setup: Scenario,
    /// The trainer's solution, as a scenario on the lab as set up.
    pub solution: Scenario,
    pub checklist: Checklist,
}

impl Exercise {
    /// The lab-side parts (scenarios of the setup and the solution) and the dashboard's part.
    pub fn into_parts(self) -> Parts {
        let checklist =
            Checklist { title: self.title.clone(), about: self.about.clone(), tasks: self.tasks.into_iter().map(|t| t.value).collect() };
        let scenario = |name: String, given: Given, steps: Vec<Spanned<Step>>| Scenario {
            name,
            about: self.about.clone(),
            lab: None,
            tags: vec![],
            engine: Some(true),
            source_anchor: None,
            samba_differs: None,
            cloud_sync_differs: None,
            presynced: Some(true),
            given,
            steps,
        };
        Parts {
            setup: scenario(format!("setup of the exercise {:?}", self.title), self.given, self.setup),
            solution: scenario(format!("solution of the exercise {:?}", self.title), Given::default(), self.solution),
            checklist,
        }
    }
}

/// The JSON Schema of the exercise format (docs/exercise.schema.json).
pub fn schema() -> serde_json::Value {
    let mut v = serde_json::to_value(schemars::schema_for!(Exercise)).expect("schema serialises");
    crate::model::scalars_as_text(&mut v);
    v
}

/// Parses an exercise; `file` names it in errors, which say file:line:column.
pub fn parse(file: &str, text: &str) -> Result<Exercise, ParseError> {
    let x: Exercise = serde_saphyr::from_str(text).map_err(|e| crate::model::parse_error(file, &e))?;
    let at = |line: u64, column: u64, message: String| ParseError { file: file.to_string(), line, column, message, detail: String::new() };
    if x.tasks.is_empty() {
        return Err(at(1, 1, "an exercise needs at least one task under `tasks:`".into()));
    }
    for t in &x.tasks {
        let (line, column) = (t.referenced.line(), t.referenced.column());
        if t.value.done_when.is_empty() {
            return Err(at(line, column, format!("task {:?} has no check under `done_when:`: nothing could ever tick it", t.value.title)));
        }
        for c in &t.value.done_when {
            match c {
                Check::Answer { accept, .. } if accept.iter().all(|a| a.trim().is_empty()) => {
                    return Err(at(line, column, format!("task {:?}: an answer check needs at least one accepted answer", t.value.title)));
                }
                Check::Right { right, .. } if ad_wire::rights::Right::parse(right).is_none() => {
                    let names: Vec<&str> = ad_wire::rights::Right::ALL.iter().map(|r| r.name()).collect();
                    return Err(at(
                        line,
                        column,
                        format!("task {:?}: unknown right {right:?} (one of: {})", t.value.title, names.join(", ")),
                    ));
                }
                Check::Audit { result: Some(r), .. } if r != "success" && r != "failure" => {
                    return Err(at(
                        line,
                        column,
                        format!("task {:?}: an audit result is `success` or `failure`, not {r:?}", t.value.title),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(x)
}

/// Where an exercise gives its own answers away: each accepted answer (of an `answer` check)
/// that its title, its description, or a task's title, text or question contains, as whole
/// words in any case. Hints and the solution may hold answers; what a trainee reads first may
/// not. Empty for a fair exercise.
pub fn answers_given_away(x: &Exercise) -> Vec<String> {
    let words = |s: &str| -> String {
        let w: Vec<String> = s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
        format!(" {} ", w.join(" "))
    };
    let mut texts = vec![("the title".to_string(), words(&x.title)), ("the description".to_string(), words(&x.about))];
    for (i, t) in x.tasks.iter().enumerate() {
        let t = &t.value;
        texts.push((format!("task {}'s title", i + 1), words(&t.title)));
        texts.push((format!("task {}'s text", i + 1), words(&t.how)));
        for c in &t.done_when {
            if let Check::Answer { question, .. } = c {
                texts.push((format!("task {}'s question", i + 1), words(question)));
            }
        }
    }
    let mut found = vec![];
    for t in x.tasks.iter().map(|t| &t.value) {
        for c in &t.done_when {
            let Check::Answer { accept, .. } = c else { continue };
            for a in accept.iter().map(|a| words(a)).filter(|a| a.trim() != "") {
                for (where_, text) in &texts {
                    if text.contains(&a) {
                        found.push(format!("{where_} contains the answer {:?}", a.trim()));
                    }
                }
            }
        }
    }
    found
}

/// Reads and parses an exercise file.
pub fn load(path: &Path) -> Result<Exercise, ParseError> {
    let name = path.display().to_string();
    let text = crate::files::read_text(path, crate::files::SCENARIO_MAX).map_err(|e| ParseError {
        file: name.clone(),
        line: 0,
        column: 0,
        message: e.to_string(),
        detail: String::new(),
    })?;
    parse(&name, &text)
}

/// The exercises built into the program (`exercises/*.yaml` when it was compiled), by name:
/// what `lab exercises` lists and `lab up --exercise NAME` starts wherever `lab` was installed
/// (`cargo install`). A test keeps this list equal to the directory.
pub const BUILT_IN: [(&str, &str); 11] = [
    ("cloud-sync-writeback", include_str!("../../../exercises/cloud-sync-writeback.yaml")),
    ("connector-password", include_str!("../../../exercises/connector-password.yaml")),
    ("enable-writeback", include_str!("../../../exercises/enable-writeback.yaml")),
    ("forest-added-after-writeback", include_str!("../../../exercises/forest-added-after-writeback.yaml")),
    ("missing-right", include_str!("../../../exercises/missing-right.yaml")),
    ("protected-user", include_str!("../../../exercises/protected-user.yaml")),
    ("pta-lockout-thresholds", include_str!("../../../exercises/pta-lockout-thresholds.yaml")),
    ("replication-lag", include_str!("../../../exercises/replication-lag.yaml")),
    ("service-stopped", include_str!("../../../exercises/service-stopped.yaml")),
    ("switch-to-pta", include_str!("../../../exercises/switch-to-pta.yaml")),
    ("writeback-permissions", include_str!("../../../exercises/writeback-permissions.yaml")),
];

/// Where exercises come from: a directory of files, or those built into the program.
#[derive(Clone, Debug)]
pub enum Shelf {
    /// `*.yaml` files in this directory.
    Dir(PathBuf),
    /// [`BUILT_IN`].
    BuiltIn,
}

impl Shelf {
    /// Every exercise on the shelf: its name and its parse (or the error, with file:line).
    pub fn list(&self) -> std::io::Result<Vec<(String, Result<Exercise, ParseError>)>> {
        Ok(match self {
            Shelf::Dir(dir) => discover(dir)?.into_iter().map(|(n, p)| (n, load(&p))).collect(),
            Shelf::BuiltIn => BUILT_IN.iter().map(|(n, text)| (n.to_string(), parse(&format!("exercises/{n}.yaml"), text))).collect(),
        })
    }

    /// An exercise by name, or by the path of its file.
    pub fn get(&self, name: &str) -> Result<Exercise, String> {
        let parsed = |r: Result<Exercise, ParseError>| r.map_err(|e| format!("{e}\n{}", e.detail));
        if Path::new(name).is_file() {
            return parsed(load(Path::new(name)));
        }
        match self {
            Shelf::Dir(dir) => parsed(load(&find(name, dir)?)),
            Shelf::BuiltIn => match BUILT_IN.iter().find(|(n, _)| *n == name) {
                Some((n, text)) => parsed(parse(&format!("exercises/{n}.yaml"), text)),
                None => {
                    let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                    Err(format!("no exercise {name:?} (there are: {}; `lab exercises` lists them)", names.join(", ")))
                }
            },
        }
    }
}

impl std::fmt::Display for Shelf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shelf::Dir(d) => write!(f, "{}", d.display()),
            Shelf::BuiltIn => f.write_str("the exercises built into lab"),
        }
    }
}

/// The exercise files in a directory, by name (the file name without `.yaml`).
pub fn discover(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && let Some(stem) = path.file_stem()
        {
            found.push((stem.to_string_lossy().to_string(), path));
        }
    }
    found.sort();
    Ok(found)
}

/// An exercise by name (in `dir`) or by path.
pub fn find(name: &str, dir: &Path) -> Result<PathBuf, String> {
    let as_path = Path::new(name);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    let known = discover(dir).map_err(|e| format!("{}: {e} (the exercises' directory; --exercises DIR names another)", dir.display()))?;
    if let Some((_, p)) = known.iter().find(|(n, _)| n == name) {
        return Ok(p.clone());
    }
    let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
    Err(format!("no exercise {name:?} in {} (there are: {}; `lab exercises` lists them)", dir.display(), names.join(", ")))
}

/// Sets a running lab up for an exercise — its `given:` and setup steps, played over the
/// lab's sockets like any scenario — and puts the checklist on the dashboard. Gives back the
/// trainer's solution (for [`play_solution`]).
pub async fn begin(lab: &labkit::Lab, x: Exercise) -> Result<Scenario, String> {
    let Parts { setup, solution, checklist } = x.into_parts();
    let ca_pem = std::fs::read(&lab.info.adds.ca_cert).map_err(|e| format!("{}: {e}", lab.info.adds.ca_cert.display()))?;
    let target = crate::run::Target { info: lab.info.clone(), external_adds: lab.adds.is_none(), ca_pem };
    let mut runner = crate::run::Runner::new(&target).map_err(|e| e.0)?;
    runner.run(&setup).await.map_err(|f| format!("setup step {} ({}): expected {}, got {}", f.step, f.action, f.expected, f.actual))?;
    lab.begin_exercise(checklist).await.map_err(|e| e.to_string())?;
    Ok(solution)
}

/// Plays an exercise's solution on a lab that [`begin`] set up (tests: the exercise can be
/// done, and its checks tick).
pub async fn play_solution(lab: &labkit::Lab, solution: &Scenario) -> Result<(), String> {
    let ca_pem = std::fs::read(&lab.info.adds.ca_cert).map_err(|e| format!("{}: {e}", lab.info.adds.ca_cert.display()))?;
    let target = crate::run::Target { info: lab.info.clone(), external_adds: lab.adds.is_none(), ca_pem };
    let mut runner = crate::run::Runner::new(&target).map_err(|e| e.0)?;
    runner
        .run(solution)
        .await
        .map_err(|f| format!("solution step {} ({}, line {}): expected {}, got {}", f.step, f.action, f.line, f.expected, f.actual))
}

/// The lab an exercise needs: `cfg` with the exercise's Connect installation.
pub fn configure(cfg: &mut labkit::LabConfig, x: &Exercise) {
    cfg.engine = true;
    cfg.password_writeback = x.password_writeback.unwrap_or(true);
    cfg.sync_agents = x.given.agent.map(crate::model::AgentArg::lab).unwrap_or_default();
    // the topology the exercise starts in: DCs, domains and forests
    cfg.dcs = usize::from(x.given.dcs.unwrap_or(1));
    cfg.forests = usize::from(x.given.forests.unwrap_or(1));
    cfg.child_domain = x.given.child_domain;
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "title: t\nabout: a\ntasks:\n  - title: do it\n    done_when:\n      - sync_writeback: true\n      - event: { id: 31005 }\n";

    /// What `lab` carries inside is what exercises/ holds: each file, word for word.
    #[test]
    fn the_built_in_exercises_are_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../exercises");
        let on_disk: Vec<(String, String)> =
            discover(&dir).unwrap().into_iter().map(|(n, p)| (n, std::fs::read_to_string(p).unwrap())).collect();
        let built_in: Vec<(String, String)> = BUILT_IN.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        assert_eq!(built_in, on_disk, "exercises/ changed: update exercise::BUILT_IN");
        let shelf = Shelf::BuiltIn.list().unwrap();
        assert!(shelf.iter().all(|(_, x)| x.is_ok()));
        assert!(Shelf::BuiltIn.get("enable-writeback").is_ok());
        let e = Shelf::BuiltIn.get("enable-writebak").unwrap_err();
        assert!(
            e.contains(
                "there are: cloud-sync-writeback, connector-password, enable-writeback, forest-added-after-writeback, missing-right"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_good_file_parses() {
        let x = parse("x.yaml", GOOD).unwrap();
        assert_eq!(x.tasks[0].value.done_when.len(), 2);
        assert_eq!(x.tasks[0].referenced.line(), 4);
    }

    #[test]
    fn mistakes_are_refused_where_they_are() {
        let e = parse("x.yaml", "title: t\nabout: a\ntasks:\n  - title: do it\n    done_when:\n      - sync_writebak: true\n").unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("sync_writeback"), "{e}");
        let e = parse(
            "x.yaml",
            "title: t\nabout: a\ntasks:\n  - title: a\n    done_when: [ { sync_writeback: true } ]\n  - title: b\n    done_when: []\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.message.contains("no check")), (6, true), "{e}");
        let e = parse(
            "x.yaml",
            "title: t\nabout: a\ntasks:\n  - title: a\n    done_when: [ { right: { right: Reset Passwd, granted: true } } ]\n",
        )
        .unwrap_err();
        assert!(e.message.contains("Reset Password"), "{e}");
        let e = parse("x.yaml", "title: t\nabout: a\ntasks: []\n").unwrap_err();
        assert!(e.message.contains("at least one task"), "{e}");
    }
}
