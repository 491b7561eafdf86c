//! The runner's own end-to-end tests: scenarios that must fail do, with the right place and
//! message; the human report, JUnit and the redacted transcript keep their shape
//! (insta snapshots); docs/scenario.schema.json is the schema the code generates.

use std::path::{Path, PathBuf};

use scenario::suite::{self, Style};

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Durations change from run to run; the rest of a report must not.
fn stable(report: &str) -> String {
    let mut out = String::new();
    for line in report.lines() {
        let line = match line.find(" ms") {
            Some(end) => {
                let start = line[..end].rfind('(').map(|i| i + 1).unwrap_or(end);
                format!("{}N{}", &line[..start], &line[end..])
            }
            None => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn scenarios_that_must_fail_fail_at_the_right_step_with_expected_and_actual() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = here().join("tests/must-fail");
    let files = suite::discover(std::slice::from_ref(&root)).unwrap();
    assert_eq!(files.len(), 7);
    let results = runtime().block_on(suite::run_all(&root, files, 2));
    assert!(results.iter().all(|r| !r.passed()), "every one of them must fail");
    let by_id = |id: &str| results.iter().find(|r| r.id == id).unwrap().outcome.clone().unwrap_err();

    let f = by_id("wrong-ldap-code");
    assert_eq!((f.step, f.line, f.column, f.action.as_str()), (2, 5, 5, "ldap.bind"));
    assert_eq!(f.expected, "ldap invalidCredentials, data 533");
    assert!(f.actual.starts_with("ldap invalidCredentials (49), data 52e"), "{}", f.actual);

    let f = by_id("expects-failure-gets-success");
    assert_eq!(f.expected, "AADSTS50126");
    assert_eq!(f.actual, "HTTP 200");

    // an absence is judged once the engine holds no request (its 32000 comes after 300 ms)
    let f = by_id("absence-judged-too-early");
    assert_eq!((f.step, f.action.as_str()), (3, "expect.event"));
    assert!(f.actual.contains("event 32000 (") && f.actual.contains("logged 1 times"), "{}", f.actual);

    let f = by_id("entry-attribute-differs");
    assert_eq!(f.actual, "badPwdCount: expected [\"3\"], found [\"0\"]");

    // `contains`: these values among others — a user is no computer
    let f = by_id("entry-lacks-a-value");
    assert!(f.actual.starts_with("objectClass: expected values including [\"user\", \"computer\"], found ["), "{}", f.actual);

    // refused before a lab starts: `lab run` plays only what `lab check` passes
    let f = by_id("unknown-capture");
    assert_eq!((f.step, f.action.as_str()), (0, "parse"));
    assert!(f.actual.contains("`${never_captured}` is neither a capture of an earlier step nor a built-in value"), "{}", f.actual);

    let f = by_id("does-not-parse");
    assert_eq!((f.step, f.line, f.column, f.action.as_str()), (0, 5, 41, "parse"));
    assert!(f.actual.contains("unknown field `pasword`"), "{}", f.actual);

    let report = suite::human(&results, Style { color: false });
    let report = report.replace(&format!("{}/", root.display()), "must-fail/");
    insta::assert_snapshot!("must_fail_report", stable(&report));

    let junit = suite::junit(&results);
    assert_eq!(junit.matches("<testcase ").count(), 7);
    assert_eq!(junit.matches("<failure ").count(), 7);
    assert!(!junit.contains("Summer-Lake-41"), "no password in JUnit output");
}

#[test]
fn the_transcript_is_redacted_and_stable() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = here().join("../../scenarios");
    let file = root.join("sspr/synced-user-no-engine-sspr-0030.yaml");
    let r = runtime().block_on(suite::run_file(&root, &file));
    assert!(r.passed(), "{:?}", r.outcome);
    for secret in ["Summer-Lake-41", "Never-Applied-Pass-1", "Cloud-Admin-Pa55!", "Lab~Client~Secret~8f2e61"] {
        assert!(!r.transcript.contains(secret), "{secret} leaked into the transcript");
    }
    insta::assert_snapshot!("transcript_sspr_no_engine", r.transcript);
}

// issue #16, item 1: where AD refuses a written-back password, the transcript says why in
// plain words next to AD's own diagnostic, while the tenant's answer stays Entra's
#[test]
fn the_transcript_says_ads_reason_in_plain_words() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = here().join("../../scenarios");
    let file = root.join("writeback/minimum-age-blocks-a-second-change.yaml");
    let r = runtime().block_on(suite::run_file(&root, &file));
    assert!(r.passed(), "{:?}", r.outcome);
    let step3 = r.transcript.split("#3 ").nth(1).and_then(|s| s.split("#4 ").next()).expect("step 3");
    assert!(step3.contains("⇢ AD DS → engine: 19 0000052D"), "{step3}");
    assert!(
        step3.contains(
            "ℹ lab note: the current password is younger than the minimum password age of the user's policy (the domain's minPwdAge"
        ),
        "{step3}"
    );
    assert!(
        !step3.contains("← 400") || !step3.lines().any(|l| l.starts_with("  ←") && l.contains("minPwdAge")),
        "the tenant's answer stays Entra's: {step3}"
    );
}

#[test]
fn the_shipped_json_schema_is_the_generated_one() {
    let shipped = std::fs::read_to_string(Path::new(&here()).join("../../docs/scenario.schema.json")).expect("docs/scenario.schema.json");
    let generated = serde_json::to_string_pretty(&scenario::model::schema()).unwrap();
    assert_eq!(shipped.trim_end(), generated, "regenerate it: cargo run -p lab -- schema > docs/scenario.schema.json");
}

#[test]
fn every_shipped_scenario_parses_and_says_what_it_pins_down() {
    let root = here().join("../../scenarios");
    let files = suite::discover(std::slice::from_ref(&root)).unwrap();
    assert!(files.len() >= 60, "{} scenarios", files.len());
    assert_eq!(suite::check(&files), vec![]);
    for f in &files {
        let s = suite::load(f).unwrap();
        assert!(s.about.split_whitespace().count() >= 8, "{}: `about:` should say what real behaviour it pins down", f.display());
    }
}
