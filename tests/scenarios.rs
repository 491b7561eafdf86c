//! Every scenario file under scenarios/ as its own test, named by its path
//! (`cargo test --test scenarios sspr/`, or nextest filters) — `scenario::harness`, the same
//! entry point other projects use for their own folders (examples/consumer). The password
//! flows' folders run a second time under Cloud Sync's provisioning agent
//! (`cloud-sync/writeback/…`): the same files, the runner's agent parameter.

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
    scenario::harness::run_folder_also_under_cloud_sync(dir, &["writeback", "sspr", "change", "unlock", "tlg", "admin"]);
}
