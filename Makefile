# The two commands a fresh machine needs: `make lab` and `make test`.
.PHONY: lab test deps bench fmt lint

lab:
	cargo run -p lab -- up

test: deps
	cargo nextest run --workspace

deps:
	scripts/deps.sh

bench:
	bench/run.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
