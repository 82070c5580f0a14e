# crossdata: `make demo` and `make test` work on a fresh machine with Python 3.11, Java 17 and make.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
JAR_DIR := .cache/jars
JAR_STAMP := $(JAR_DIR)/.resolved
WORLD ?= .cache/world
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint doctor bench clean

setup: $(PY_STAMP) $(JAR_STAMP)  ## virtualenv with the pinned stack + jar cache (quick when done)
	@echo "setup: ready ($(BIN)/crossdata)"

$(PY_STAMP): pyproject.toml infra/requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "crossdata needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install -q --disable-pip-version-check -c infra/requirements.lock -e '.[dev]'
	@touch $@

$(JAR_STAMP): infra/jars/pom.xml infra/fetch-jars.sh infra/get-maven.py | $(PY_STAMP)
	PYTHON=$(BIN)/python bash infra/fetch-jars.sh $(JAR_DIR)
	@touch $@

demo: setup  ## generate a small world and run the whole pipeline on it
	$(BIN)/python -m crossdata.demo

test: setup  ## the whole suite (slow cases included)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check jobs tests infra
	$(BIN)/ruff format --check jobs tests infra
	$(BIN)/mypy
	$(BIN)/mypy infra

doctor: setup
	$(BIN)/crossdata doctor

clean:
	rm -rf lakehouse mlflow.db mlartifacts .cache/checkpoints .cache/spark-warehouse .cache/world
