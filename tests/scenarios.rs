//! Every scenario file under scenarios/ as its own test, named by its path
//! (`cargo test --test scenarios reset/`, or nextest filters). A failure prints the step's
//! file:line:column with expected and actual, then the redacted transcript.

use std::path::PathBuf;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use scenario::suite;

fn main() {
    let args = Arguments::from_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let files = suite::discover(std::slice::from_ref(&root)).expect("scenarios/ is readable");
    let rt = Arc::new(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime"));
    let trials = files
        .into_iter()
        .map(|f| {
            let (rt, root) = (rt.clone(), root.clone());
            Trial::test(suite::test_id(&root, &f), move || {
                let r = rt.block_on(suite::run_file(&root, &f));
                match &r.outcome {
                    Ok(()) => Ok(()),
                    Err(fail) => Err(Failed::from(format!(
                        "{}\n--- transcript (passwords redacted) ---\n{}",
                        suite::failure_text(&r.path, fail, suite::Style { color: false }),
                        r.transcript
                    ))),
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
