# Every target documents itself; `make help` lists them. CI (.ci/run) calls the same targets.
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Build caches live outside the clone so a fresh clone (CI) reuses them.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/repast/cargo-target
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(BIN):$(HOME)/.cargo/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: lock help install build-dev demo test test-py test-go test-java cargo-test test-prerequisites fuzz lint format typecheck refresh-golden bench-clients

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-19s %s\n", $$1, $$2}'

$(VENV)/.deps: requirements-dev.lock pyproject.toml server/pyproject.toml
	@# uv from PATH, else into the venv itself (a system pip may refuse installs: PEP 668).
	@command -v uv >/dev/null || { python3.11 -m venv $(VENV) && $(BIN)/pip install -q uv; }
	uv venv --allow-existing -q -p python3.11 $(VENV)
	@# The lock pins every dev and runtime dependency: a clone tests against the versions main was
	@# tested with (a new release of a dependency can change typing or behaviour); `make lock` moves them.
	uv pip install -q -r requirements-dev.lock
	@touch $@

install: $(VENV)/.deps ## Create the virtualenv with the dev dependencies

build-dev: $(VENV)/.deps ## Build the Rust extension (release) and install repast + repast-server into the venv
	maturin develop --release --uv -q
	uv pip install -q --no-deps -e server

demo: build-dev ## Run the end-to-end demo on the embedded defaults (SQLite online, Parquet offline)
	bash scripts/demo.sh

test: test-prerequisites build-dev cargo-test test-py test-go test-java ## Run every test: cargo test, pytest (starts its own Redis, S3, Kafka), then the Go and Java clients' tests

test-prerequisites: ## Install what the tests start (redis-server, Java + Maven for Kafka) where it can; fetch Kafka
	bash scripts/test-prerequisites.sh

test-py: build-dev ## Run only the Python tests
	pytest

# The clients' tests start redis-server and `repast serve` from this venv themselves. Their
# caches (Go's module and build caches, ~/.m2) live outside the clone.
test-go: build-dev ## Run the Go client's tests (race detector on) against a real `repast serve`
	cd clients/go && REPAST_PYTHON=$(BIN)/python go test -race -count=1 ./...

test-java: build-dev ## Run the Java client's tests against a real `repast serve`
	cd clients/java && REPAST_PYTHON=$(BIN)/python mvn -B --no-transfer-progress test

bench-clients: build-dev ## Benchmark the Go and Java clients (1 x 50 calls, 32 callers); see load-tests/RESULTS.md
	bash load-tests/bench_clients.sh

FUZZ_EXAMPLES ?= 2000
fuzz: build-dev ## Long adversarial run: random hypothesis bodies and schemathesis against repast serve
	REPAST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) pytest tests/test_server_fuzz.py -o timeout=0 -x

cargo-test: ## Run the Rust kernel tests
	cargo test -q --workspace

lint: $(VENV)/.deps ## ruff, cargo fmt --check, cargo clippy -D warnings, gofmt and go vet on the Go client
	ruff check sdk server tests load-tests clients/testdata
	ruff format --check sdk server tests load-tests clients/testdata
	cargo fmt --all --check
	cargo clippy -q --workspace --all-targets -- -D warnings
	@test -z "$$(gofmt -l clients/go)" || { gofmt -l clients/go; echo "gofmt: the files above need formatting"; exit 1; }
	cd clients/go && go vet ./...

typecheck: build-dev ## mypy --strict on the SDK, the server and the tests; stubtest keeps _core.pyi honest
	mypy
	python -m mypy.stubtest repast._core --mypy-config-file pyproject.toml

format: $(VENV)/.deps ## Format Python and Rust sources
	ruff format sdk server tests load-tests clients/testdata
	ruff check --fix -q sdk server tests load-tests clients/testdata
	cargo fmt --all
	gofmt -w clients/go

refresh-golden: ## Copy newly recorded Feast golden vectors into tests/golden: make refresh-golden FROM=<folder>
	@test -n "$(FROM)" && test -d "$(FROM)" || { echo "usage: make refresh-golden FROM=<folder of *.json vectors>"; exit 2; }
	cp "$(FROM)"/*.json tests/golden/
	git status --short tests/golden

lock: ## Re-resolve requirements-dev.lock from requirements-dev.txt and pyproject.toml (newest versions)
	uv pip compile -q pyproject.toml requirements-dev.txt --extra redis --extra s3 --extra kafka --extra spark \
	  --python-version 3.11 -o requirements-dev.lock
