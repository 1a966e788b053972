# Egenvård sync. `make run` serves the sample personas; `make test` runs the whole suite.
# Both set themselves up on a fresh clone: a virtualenv in .venv, dependencies, migrations.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint install migrate seed clean screenshots

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The local targets run in development: the development issuer (`selfcare token`), generated
# secrets, /docs. The service's own default is production (SELFCARE_ENVIRONMENT).
DEV := SELFCARE_ENVIRONMENT=development

migrate: $(STAMP)
	$(DEV) $(BIN)/selfcare migrate

seed: migrate
	$(DEV) $(BIN)/selfcare seed

run: seed
	$(DEV) $(BIN)/selfcare serve

PY_TREES := app rules sync tests bench sample_data

lint: $(STAMP)
	$(BIN)/ruff format --check $(PY_TREES)
	$(BIN)/ruff check $(PY_TREES)
	$(BIN)/mypy
	$(BIN)/lint-imports

# pytest-xdist: one worker per core (each starts its own throwaway PostgreSQL cluster).
WORKERS ?= auto

test: lint
	$(BIN)/pytest -n $(WORKERS) --dist worksteal --durations=30

# The inner loop: SQLite only, in process (no real uvicorn, not the every-route sweeps), in
# parallel, stop at the first failure. `make test` (CI) runs everything on both databases.
test-fast: $(STAMP)
	$(BIN)/ruff format --check $(PY_TREES)
	$(BIN)/ruff check $(PY_TREES)
	SELFCARE_TEST_BACKENDS=sqlite $(BIN)/pytest -n $(WORKERS) --dist worksteal -x -q -m "not e2e and not slow"

# The care team's pages in Chromium (Debian's /usr/bin/chromium), screenshots in var/screenshots.
screenshots: $(STAMP)
	SELFCARE_SCREENSHOTS=var/screenshots SELFCARE_TEST_BACKENDS=sqlite $(BIN)/pytest -q tests/app/web/test_browser.py tests/app/web/test_browser_mina.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
