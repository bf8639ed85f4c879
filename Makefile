# The commands the README names. Every target creates .venv and installs the
# pinned requirements first (once; again only when a requirements file changes).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo runs with DEBUG so runserver serves the admin's static files.
DEMO_ENV := DEBUG=true LOG_FORMAT=text

.PHONY: install demo demo-data serve test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required; set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

# Set up the demo (migrate, load offline sample prices, demo login), then serve it.
demo: demo-data serve

demo-data: $(STAMP)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py demo_setup

serve: $(STAMP)
	@echo "Serving on http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	$(DEMO_ENV) $(PY) manage.py runserver $(HOST):$(PORT)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
