//! `lab check` finds every mistake `lab run` could not play, without a lab (issue #17, item
//! 2): one file per mistake in tests/check-fail/, each refused with file:line:column and what
//! would be valid; the messages are pinned by an insta snapshot. The shipped scenarios pass.

use std::path::Path;

use scenario::suite;

#[test]
fn each_mistake_is_refused_with_where_and_what_would_be_valid() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = here.join("tests/check-fail");
    let files = suite::discover(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(files.len(), 9);
    let errors = suite::check(&files);
    let mut per_file: Vec<String> = errors.iter().map(|e| e.file.clone()).collect();
    per_file.dedup();
    assert_eq!(per_file.len(), files.len(), "every file refused, each once: {errors:#?}");
    let shown: Vec<String> = errors.iter().map(|e| e.to_string().replace(&format!("{}/", here.display()), "")).collect();
    insta::assert_snapshot!("check_fail_messages", shown.join("\n"));
}

#[test]
fn every_shipped_scenario_passes_the_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let files = suite::discover(&[root]).unwrap();
    let errors = suite::check(&files);
    assert!(errors.is_empty(), "{errors:#?}");
}
