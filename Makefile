# The two commands a fresh machine needs: `make lab` and `make test`.
.PHONY: lab test deps bench conformance fmt lint

lab:
	cargo run -p lab -- up

test: deps
	cargo nextest run --workspace

deps:
	scripts/deps.sh

bench:
	bench/run.sh

# the on-premises scenarios against a throwaway Samba AD DC and the built-in AD DS (root)
conformance:
	bash scripts/conformance.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
