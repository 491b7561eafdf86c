//! A shipped exercise never gives its own answers away: no accepted answer in its title, its
//! description, or a task's title, text or question (issue 32: `protected-user` named 33004,
//! adminCount and AdminSDHolder in its description). Hints and the solution may.

use scenario::exercise::{answers_given_away, load, parse};

#[test]
fn no_shipped_exercise_tells_its_answers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../exercises");
    let mut seen = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let x = load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(answers_given_away(&x), Vec::<String>::new(), "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 4, "the shipped exercises: {seen}");
}

#[test]
fn an_answer_in_the_description_or_a_task_is_found_as_a_whole_word_in_any_case() {
    let text = r#"
title: "User2 cannot reset"
about: >
  Connect logs event 33004 and the user has AdminCount set.
tasks:
  - title: "Find the event"
    how: Look at the log; the one after 31001 (33004x is no match).
    hints: [ "It is 33004." ]
    done_when:
      - answer: { question: "Which event?", accept: ["33004"] }
  - title: "Find the attribute"
    done_when:
      - answer: { question: "Which attribute marks User2?", accept: ["adminCount"] }
  - title: "Name the right"
    how: Nothing here names it.
    done_when:
      - answer: { question: "Which right?", accept: ["Reset Password"] }
"#;
    let x = parse("t.yaml", text).unwrap();
    assert_eq!(
        answers_given_away(&x),
        vec!["the description contains the answer \"33004\"".to_string(), "the description contains the answer \"admincount\"".to_string()],
        "hints may hold answers; 33004x is another word"
    );
}
