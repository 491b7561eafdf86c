//! One truth for the scenario language (issue #17, item 1): the JSON Schema the project
//! publishes (`docs/scenario.schema.json`, what editors validate with) is the one the loader's
//! types generate, and a standard validator (the `jsonschema` crate, Draft 2020-12, as VS
//! Code's YAML extension uses) accepts exactly what the loader accepts — every shipped
//! scenario, and each edge case below, both ways.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn published() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("docs/scenario.schema.json")).unwrap()).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&published()).expect("the published schema is a valid Draft 2020-12 schema")
}

/// A YAML file as an editor's validator sees it: plain scalars typed (533 is a number).
fn as_json(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("YAML")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn the_published_schema_is_the_one_the_loader_generates() {
    assert_eq!(
        published(),
        scenario::model::schema(),
        "docs/scenario.schema.json is stale: run `cargo run -p lab -- schema > docs/scenario.schema.json`"
    );
}

#[test]
fn every_shipped_scenario_is_valid_for_the_schema_and_the_loader() {
    let v = validator();
    let mut files = vec![];
    yaml_files(&root().join("scenarios"), &mut files);
    yaml_files(&root().join("crates/scenario/tests/must-fail"), &mut files);
    yaml_files(&root().join("examples/consumer/scenarios"), &mut files);
    assert!(files.len() >= 100, "{} files", files.len());
    let mut wrong = vec![];
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // a scenario's LDIF lab is YAML-free; the must-fail file that does not parse is below
        if f.ends_with("does-not-parse.yaml") {
            continue;
        }
        let loader = scenario::model::parse(&f.display().to_string(), &text).map(|_| ());
        let schema: Vec<String> = v.iter_errors(&as_json(&text)).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if loader.is_err() || !schema.is_empty() {
            wrong.push(format!("{}: loader {:?}; schema {:?}", f.display(), loader.err().map(|e| e.to_string()), schema));
        }
    }
    assert!(wrong.is_empty(), "{} of {} files:\n{}", wrong.len(), files.len(), wrong.join("\n"));
}

#[test]
fn the_schema_and_the_loader_agree_on_edge_cases() {
    let v = validator();
    let head = "name: x\nabout: y\n";
    let cases: &[(&str, &str)] = &[
        // scalars where text is wanted: both take them
        (
            "an LDAP data code as a number",
            "steps:\n  - ldap.bind: { user: 'TESTLAB\\User1', password: x }\n    expect: { ldap: invalidCredentials, data: 533 }\n",
        ),
        ("a duration of 0", "given:\n  ad-ds: { policy: { min_age: 0 } }\nsteps:\n  - clock.advance: 1d\n"),
        ("a password that YAML reads as a number", "steps:\n  - ldap.bind: { user: 'TESTLAB\\User1', password: 12345678 }\n"),
        // what neither takes
        ("an unknown top-level key", "stepz: []\n"),
        ("an unknown action", "steps:\n  - ldap.bnd: { user: x, password: y }\n"),
        ("an unknown argument", "steps:\n  - ldap.bind: { user: x, password: y, colour: blue }\n"),
        ("a step that is a list", "steps:\n  - [ldap.bind]\n"),
        ("an LDAP result that is a number", "steps:\n  - ldap.bind: { user: x, password: y }\n    expect: { ldap: 49 }\n"),
    ];
    for (what, body) in cases {
        let text = format!("{head}{body}");
        let loader = scenario::model::parse("case.yaml", &text).is_ok();
        let schema = v.is_valid(&as_json(&text));
        assert_eq!(loader, schema, "{what}: the loader {} it, the schema {} it", accepts(loader), accepts(schema));
    }
    // and a scenario without its required keys
    for (what, text) in [("no about", "name: x\nsteps: []\n"), ("no steps", "name: x\nabout: y\n")] {
        let loader = scenario::model::parse("case.yaml", text).is_ok();
        assert_eq!(loader, v.is_valid(&as_json(text)), "{what}");
    }
}

fn accepts(yes: bool) -> &'static str {
    if yes { "accepts" } else { "refuses" }
}

// The exercise format (issue #16): its published schema is the generated one, and every
// shipped exercise is valid for both the validator and the loader; a mistake is refused by
// both.
fn exercise_schema() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("docs/exercise.schema.json")).unwrap()).unwrap()
}

#[test]
fn the_published_exercise_schema_is_the_generated_one_and_every_exercise_is_valid() {
    assert_eq!(
        exercise_schema(),
        scenario::exercise::schema(),
        "docs/exercise.schema.json is stale: run `cargo run -p lab -- schema exercise > docs/exercise.schema.json`"
    );
    let v = jsonschema::draft202012::new(&exercise_schema()).expect("a valid Draft 2020-12 schema");
    let mut files = vec![];
    yaml_files(&root().join("exercises"), &mut files);
    assert!(files.len() >= 4, "{files:?}");
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        scenario::exercise::parse(&f.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
        let errors: Vec<String> = v.iter_errors(&as_json(&text)).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", f.display());
        assert!(
            text.starts_with("# yaml-language-server: $schema=../docs/exercise.schema.json"),
            "{}: points editors at the schema",
            f.display()
        );
    }
    let typo = "title: t\nabout: a\ntasks:\n  - title: x\n    done_when:\n      - sync_writebak: true\n";
    assert!(scenario::exercise::parse("typo.yaml", typo).is_err());
    assert!(!v.is_valid(&as_json(typo)), "the schema refuses the typo too");
}
