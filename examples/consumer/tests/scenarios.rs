fn main() {
    scenario::harness::run_folder(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
}
