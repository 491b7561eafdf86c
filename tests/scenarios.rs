//! Every scenario file under scenarios/ as its own test, named by its path
//! (`cargo test --test scenarios sspr/`, or nextest filters) — `scenario::harness`, the same
//! entry point other projects use for their own folders (examples/consumer).

fn main() {
    scenario::harness::run_folder(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios"));
}
