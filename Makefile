# The two commands of the README: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The machine's PostgreSQL server, used for the second test pass when it answers.
TEST_SERVER_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: run test test-fast lint bench bench-parse bench-scale clean-local system-deps

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --quiet --no-deps -e .
	@touch $@

## make run: bootstrap, load the demo nights, serve Airflow on http://localhost:8080
run: $(STAMP)
	$(BIN)/upstream serve

## Debian Chromium for the browser test of the monitoring page (installed when missing, as root)
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "NOTICE: chromium missing and cannot be installed here; the browser test will fail"; fi; }

## make test: the whole suite on the embedded PostgreSQL, then the database tests again on
## the PostgreSQL server at TEST_SERVER_URL (skipped with a notice when none answers)
test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow"
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(TEST_SERVER_URL)" 2>/dev/null; then \
	  echo "== second pass: database tests on $(TEST_SERVER_URL) =="; \
	  UPSTREAM_TEST_SERVER_URL="$(TEST_SERVER_URL)" $(BIN)/python -m pytest -m "server and not slow"; \
	else echo "NOTICE: no PostgreSQL server at $(TEST_SERVER_URL); server pass skipped"; fi

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not integration"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_parse.py
	$(BIN)/python benchmarks/bench_outcomes.py --calls 200000

## 1, 10 and 50 agencies, LocalExecutor vs two Celery workers (needs Redis; about 30 min here)
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py

clean-local:
	-$(BIN)/upstream db stop
	rm -rf .upstream
