# make          lists the targets
# make demo     creates .venv, installs the project, runs the nightly pipeline on the bundled data
# make test     creates .venv, installs the project, runs the test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# pytest-xdist workers: the tests are independent (each its own folders, databases, servers);
# a file's tests run on one worker, so its module fixtures (a trained model) are made once
WORKERS ?= 2
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast coverage lint format sql clean

help:
	@echo "make demo       install into $(VENV) and run the nightly pipeline on the bundled sample data"
	@echo "make test       install into $(VENV) and run the whole test suite (SQLite and PostgreSQL)"
	@echo "make test-fast  unit tests only"
	@echo "make coverage   the test suite under coverage: a report per file, HTML in build/coverage"
	@echo "make lint       ruff check and mypy on pipeline_lib"
	@echo "make format     ruff format"
	@echo "make sql        regenerate sql/schema.sql from the SQLAlchemy tables"
	@echo "make install    only create $(VENV) and install the project with its dev extras"
	@echo "make clean      remove $(VENV) and the demo data folder"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; run: make PYTHON=/path/to/python3.11 ..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/forecast-pipeline demo

# The test targets write bytecode (__pycache__, ignored by git) even where the environment says
# not to (PYTHONDONTWRITEBYTECODE, set on this machine): every test process (two workers, the
# CLI's and servers' children) otherwise compiles the project and rewrites the tests' asserts
# again: 1-1.5 s of each worker's start.
test test-fast coverage: export PYTHONDONTWRITEBYTECODE :=

test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile tests/unit

# Not part of make test: on Python 3.11 the tracer makes the whole suite about 1.3x slower
# (7 min 05 s -> 9 min 15 s; the in-process end-to-end tests 2x), past make test's 8 minutes.
# Code run in child processes (the CLI tests, a worker's flow runs) is not counted.
# TESTS=tests/unit for a part.
TESTS ?= tests
coverage: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --cov --cov-report=term \
		--cov-report=html:build/coverage $(TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .

sql: $(STAMP)
	$(BIN)/python -m pipeline_lib.db.ddl > sql/schema.sql

clean:
	rm -rf $(VENV) data
