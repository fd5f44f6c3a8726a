# Sentinel: every developer and CI entry point. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
BIN       := $(VENV)/bin
PY        := $(BIN)/python
UV_VERSION := 0.13.9
UV        := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PROTOS    := $(shell find proto -name '*.proto' | sort)
API_OUT   := libs/api/src
PROTOC     = PATH=$(abspath $(BIN)):$$PATH $(PY) -m grpc_tools.protoc -I proto \
             --python_out=$(1) --grpc_python_out=$(1) --mypy_out=quiet:$(1) --mypy_grpc_out=quiet:$(1)

# Two OpenBLAS threads on two vCPUs stall in 4 ms steps under contention (ARCHITECTURE.md §3).
export OPENBLAS_NUM_THREADS ?= 1
export UV_PYTHON ?= 3.11

.PHONY: help install run test lint typecheck proto proto-check buf-lint buf-breaking pytest \
        bench-ingest bench-detect bench-alerts nab clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

install: $(VENV)/.installed ## Create .venv with every workspace package, the dev tools and the `sentinel` CLI

$(VENV)/.installed: $(if $(findstring .tools,$(UV)),.tools/bin/uv) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --all-packages --locked
	@touch $@

run: install ## Start all four services on the embedded stores (or SENTINEL_POSTGRES_DSN / SENTINEL_REDIS_URL)
	$(BIN)/sentinel dev up

test: install lint typecheck proto-check buf-lint pytest ## Lint, typecheck, check generated code and protos, run the whole test suite

lint: install ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy --strict on every src/ tree
	$(BIN)/mypy -p sentinel.runtime -p sentinel.testing -p sentinel.sdk -p sentinel.ingestion \
	  -p sentinel.detection -p sentinel.storage -p sentinel.incident_manager

pytest: install ## Run the test suite (unit, integration, e2e)
	$(BIN)/pytest -q $(PYTEST_ARGS)

proto: install ## Regenerate libs/api from proto/ (grpcio-tools + mypy-protobuf)
	rm -rf $(API_OUT)/sentinel/api
	$(call PROTOC,$(API_OUT)) $(PROTOS)

proto-check: install ## Fail if the committed generated code is stale
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(call PROTOC,$$tmp) $(PROTOS); \
	if ! diff -r "$$tmp/sentinel/api" $(API_OUT)/sentinel/api >/dev/null; then \
	  echo "generated code in $(API_OUT) is stale: run 'make proto' and commit" >&2; \
	  diff -r "$$tmp/sentinel/api" $(API_OUT)/sentinel/api | head -40 >&2; exit 1; fi; \
	echo "generated code is up to date"

buf-lint: install ## buf lint (STANDARD + COMMENTS), buf format, buf breaking against main
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
	  $(BIN)/buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no buf module on main yet, skipped"; fi

clean: ## Remove the virtualenv, embedded stores and caches
	rm -rf $(VENV) .tools var .mypy_cache .ruff_cache

# Deployment artefacts (Dockerfile, docker-compose.yml, helm/): their targets live in mk/deploy.mk.
-include mk/deploy.mk

bench-ingest: install ## Benchmark ingestion + storage over loopback against the raw COPY ceiling (JSON last line)
	$(PY) bench/ingest.py $(BENCH_ARGS)

nab: install ## Score detection on ../shared/nab through the real service (all profiles + the fixed threshold)
	$(PY) -m sentinel.detection.evaluation.nab_service --nab ../shared/nab --out var/nab-service --compare-offline

bench-detect: install ## Benchmark detection scoring over loopback against a naive per-series baseline (JSON last line)
	$(PY) bench/detect.py $(BENCH_ARGS)

bench-alerts: install ## Benchmark alert dedup through storage + incident-manager over loopback (JSON last line)
	$(PY) bench/alerts.py $(BENCH_ARGS)
