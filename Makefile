# Every target documents itself; `make help` lists them. CI (.ci/run) calls the same targets.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Build caches live outside the clone so a fresh clone (CI) reuses them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/repast/cargo-target
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(BIN):$(HOME)/.cargo/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help install build-dev demo test test-py cargo-test fuzz lint format typecheck bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.deps: requirements-dev.txt pyproject.toml server/pyproject.toml
	@command -v uv >/dev/null || python3 -m pip install --quiet uv
	uv venv --allow-existing -q -p python3.11 $(VENV)
	uv pip install -q -r requirements-dev.txt
	@touch $@

install: $(VENV)/.deps ## Create the virtualenv with the dev dependencies

build-dev: $(VENV)/.deps ## Build the Rust extension (release) and install repast + repast-server into the venv
	maturin develop --release --uv -q
	uv pip install -q --no-deps -e server

demo: build-dev ## Run the end-to-end demo on the embedded defaults (SQLite online, Parquet offline)
	bash scripts/demo.sh

test: build-dev cargo-test test-py ## Run every test: cargo test, then pytest (starts its own Redis, S3, Kafka)

test-py: build-dev ## Run only the Python tests
	pytest

FUZZ_EXAMPLES ?= 2000
fuzz: build-dev ## Long adversarial run: random hypothesis bodies and schemathesis against repast serve
	REPAST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) pytest tests/test_server_fuzz.py -o timeout=0 -x

cargo-test: ## Run the Rust kernel tests
	cargo test -q --workspace

lint: $(VENV)/.deps ## ruff, cargo fmt --check, cargo clippy -D warnings
	ruff check sdk server tests load-tests
	ruff format --check sdk server tests load-tests
	cargo fmt --all --check
	cargo clippy -q --workspace --all-targets -- -D warnings

typecheck: build-dev ## mypy --strict on the SDK and the server; stubtest keeps _core.pyi honest
	mypy
	python -m mypy.stubtest repast._core --mypy-config-file pyproject.toml

format: $(VENV)/.deps ## Format Python and Rust sources
	ruff format sdk server tests load-tests
	ruff check --fix -q sdk server tests load-tests
	cargo fmt --all
