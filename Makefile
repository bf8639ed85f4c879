# The commands the README and docs/development.md name. Every target creates .venv and installs the
# pinned requirements first (once; again only when a requirements file changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo runs with DEBUG so runserver serves the admin's static files, and offline: the
# synthetic sample provider is its only price source.
DEMO_ENV := DEBUG=true LOG_FORMAT=text PRICE_PROVIDERS=sample

.PHONY: install demo demo-data serve test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

# Set up the demo (migrate, sample prices, demo logins, the whole day run end to end), then serve
# it with a q-cluster running the schedules beside the web server.
demo: demo-data serve

# The demo's logins with their passwords, last in what demo-data and serve print.
define SHOW_LOGINS
	@if [ -s "$${STORAGE_PATH:-data}/demo-logins.txt" ]; then echo "Demo logins (user / password):"; \
	  sed 's/^/  /' "$${STORAGE_PATH:-data}/demo-logins.txt"; \
	  else echo "Demo logins: demo (administrator) and demo-retiree"; fi
	@echo "(set a password with: $(PY) manage.py changepassword demo; another machine: make demo HOST=0.0.0.0 and ALLOWED_HOSTS=<this host's name>)"
endef

demo-data: $(STAMP)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py demo_setup
	$(SHOW_LOGINS)

serve: $(STAMP)
	@echo "Serving on http://$(HOST):$(PORT)/ with a q-cluster (Ctrl-C stops both)"
	$(SHOW_LOGINS)
	@$(DEMO_ENV) $(PY) manage.py qcluster > qcluster.log 2>&1 & QPID=$$!; \
	  trap 'kill $$QPID 2>/dev/null' EXIT INT TERM; \
	  $(DEMO_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

# PYTEST_ARGS narrows a run, e.g. PYTEST_ARGS='-m "not fuzz and not browser"' (CI's PostgreSQL pass).
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

bench: $(STAMP)
	$(PY) bench/bench_prices.py
	$(PY) bench/optimizer.py
	$(PY) bench/planner.py
	$(PY) bench/planner_drift.py
	$(PY) bench/preview.py
	$(PY) bench/api.py
	$(PY) bench/web.py
	$(PY) bench/pipeline.py  # PostgreSQL at 127.0.0.1:5432 (--pg-url); about ten minutes

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
