# The two commands a fresh machine needs: `make lab` and `make test`.
.PHONY: lab test deps bench conformance fmt lint mutants mutants-ci

lab:
	cargo run -p lab -- up

# cargo-nextest runs each test in its own process (faster here); without it, cargo test
test: deps
	@if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace; \
	else echo "cargo-nextest not installed (cargo install cargo-nextest --locked): running cargo test"; cargo test --workspace; fi
	cargo test --doc -p hybrid-lab

deps:
	scripts/deps.sh

bench:
	bench/run.sh

# the on-premises scenarios against a throwaway Samba AD DC and the built-in AD DS (root)
conformance:
	bash scripts/conformance.sh

# mutation testing of the core rules (cargo install cargo-mutants --locked): see docs/testing.md
mutants:
	scripts/mutants.sh

# the subset CI runs (the commit point's rule, token validation), in this checkout's build
mutants-ci:
	MUTANTS_IN_PLACE=1 scripts/mutants.sh ci

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
