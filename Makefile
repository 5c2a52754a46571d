# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
export PORT

.PHONY: run test lint bench bench-deps system-deps test-deps clean deploy-synth diagram

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps make a second run skip installs until a requirements file changes.
$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

## Run the site on its embedded defaults: web + Celery worker + beat, Ctrl-C stops all.
## devtools/run.py migrates, prepares, starts the Procfile and prints where to look once it is up.
run: $(VENV)/.runtime-installed
	bash scripts/install-system-deps --runtime
	HOST=$(HOST) exec $(BIN)/python -m devtools.run

## Install the Debian packages the tests need (root only; skipped when present).
system-deps:
	bash scripts/install-system-deps

# The npm stand-in for the Cognito hosted UI, installed exactly from its lock file.
tests/oidc/node_modules/.installed: tests/oidc/package.json tests/oidc/package-lock.json | system-deps
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-deps: system-deps $(VENV)/.dev-installed tests/oidc/node_modules/.installed

## Lint, migration check and the whole test suite on throwaway PostgreSQL/Redis servers.
test: test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_ENV=test $(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_ENV=test $(BIN)/pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Debian packages only the benchmarks use (wrk), on top of what the tests need.
bench-deps: test-deps
	bash scripts/install-bench-deps

## Benchmarks (not part of `make test`): numbers and ratios in benchmarks/results/latest.json.
## `make bench BENCH_FULL=1` also sends to 100,000 readers; see docs/benchmarks.md.
bench: bench-deps
	DJANGO_ENV=test $(BIN)/python -m benchmarks

## The AWS stack (deploy/): write its CloudFormation template to deploy/cdk.out (no account needed).
deploy-synth: test-deps
	$(BIN)/python -m deploy.app

## Redraw docs/architecture.{dot,svg,png} from the synthesized stack (commit the result).
diagram: test-deps
	$(BIN)/python -m deploy.diagram

clean:
	rm -rf var .pytest_cache .ruff_cache test-artifacts deploy/cdk.out
