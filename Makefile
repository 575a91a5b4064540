# The two commands of the README: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The machine's PostgreSQL server, used for the second test pass when it answers.
TEST_SERVER_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: run test test-fast lint bench bench-parse bench-scale clean-local system-deps

# Says what it installs. pip's own output (~300 lines, plus this machine's index warnings) goes
# to .venv/pip-install.log and is summarised here: every 25th package, then the unpack step,
# which takes most of the 1-3 minutes. On failure the log's tail is printed.
PIP_PROGRESS := awk '/^Collecting /{ if (++n % 25 == 0) { print "    " n " packages fetched..."; fflush() } } \
  /^Installing collected packages:/{ print "    unpacking " gsub(/,/, ",") + 1 " packages (the longest step)..."; fflush() } \
  /^Successfully installed/{ print "    installed " NF - 2 " packages"; fflush() }'

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> upgrading pip in $(VENV)"
	@$(BIN)/python -m pip install --quiet --quiet --upgrade pip
	@echo "==> installing requirements.txt ($$(grep -c '==' requirements.txt) pinned packages; 1-3 min on a fresh machine)"
	@set -o pipefail; $(BIN)/python -m pip install --progress-bar off -r requirements.txt 2>&1 \
	  | tee $(VENV)/pip-install.log | $(PIP_PROGRESS) \
	  || { echo "pip failed; the end of $(VENV)/pip-install.log:"; tail -n 40 $(VENV)/pip-install.log; exit 1; }
	@echo "==> installing requirements-nodeps.txt (lifelines: declares pandas<3, runs on pandas 3)"
	@$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@echo "==> installing the upstream package itself (editable, src/)"
	@$(BIN)/python -m pip install --quiet --no-deps -e .
	@echo "==> $(VENV) ready"
	@touch $@

## make run: bootstrap, load the demo nights, serve Airflow on http://localhost:8080
run: $(STAMP)
	$(BIN)/upstream serve

## Debian packages the tests need (installed when missing, as root): Chromium for the browser
## test of the monitoring page; pango (WeasyPrint renders the board report's PDF with it) and
## poppler-utils (pdftoppm / pdftotext look at the PDF's pages in the report test)
SYSTEM_PACKAGES_MISSING = $(strip \
  $(if $(shell command -v chromium),,chromium) \
  $(if $(shell command -v pdftoppm),,poppler-utils) \
  $(if $(shell /sbin/ldconfig -p 2>/dev/null | grep -F libpangoft2-1.0.so.0),,libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core))
system-deps:
	@missing="$(SYSTEM_PACKAGES_MISSING)"; [ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages for the tests: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "NOTICE: missing and cannot be installed here: $$missing; the browser and report tests will fail"; fi; }

## make test: the whole suite on the embedded PostgreSQL, then the database tests again on
## the PostgreSQL server at TEST_SERVER_URL (skipped with a notice when none answers)
test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist loadfile
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(TEST_SERVER_URL)" 2>/dev/null; then \
	  echo "== second pass: database tests on $(TEST_SERVER_URL) =="; \
	  UPSTREAM_TEST_SERVER_URL="$(TEST_SERVER_URL)" $(BIN)/python -m pytest -m "server and not slow"; \
	else echo "NOTICE: no PostgreSQL server at $(TEST_SERVER_URL); server pass skipped"; fi

## make test-fast: tests/unit only, no database and no Airflow run (tests/unit/conftest.py fails a
## unit test that asks for one); tests/db holds the SQL-level tests, tests/integration the rest
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit -m "not slow"

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
