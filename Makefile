# The dev loop. CI runs `make test` (via .ci/run) on a fresh clone: every target sets itself up.
VENV    := .venv
PY      := $(VENV)/bin/python
MATURIN := $(VENV)/bin/maturin
STAMP   := $(VENV)/.tools-stamp
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help venv build-dev build-prod serve test test-rust test-python bench bench-durable lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet 'maturin>=1.16,<2.0'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with the build tools

build-dev: $(STAMP)  ## build the Rust extension (debug) and install the package with its dev dependencies
	$(MATURIN) develop --quiet --extras dev

build-prod: $(STAMP)  ## build the Rust extension in release mode and install the package
	$(MATURIN) develop --quiet --release --extras dev

serve: build-prod  ## run the server on the embedded default (HTTP :8787, WebSocket :8788, data in ./data)
	$(VENV)/bin/unified-events serve

test-rust:  ## cargo test of the pure Rust core (no Python needed)
	cargo test --quiet

test-python: build-dev  ## pytest against real server processes
	$(PY) -m pytest -q

test: test-rust test-python  ## everything CI runs

bench: build-prod  ## the side-by-side fan-out benchmark (see bench/README.md)
	$(PY) bench/fanout.py

bench-durable: build-prod  ## acknowledged events/s over HTTP per durability mode (see bench/README.md)
	$(PY) bench/durable_publish.py

lint:  ## clippy and rustfmt
	cargo clippy --quiet -- -D warnings
	cargo fmt --check

clean:  ## remove build outputs and the virtualenv
	rm -rf target $(VENV) .pytest_cache
