# Two commands for a fresh machine (Python 3.11+ and make):
#   make run   - set up, load the demo catalog, serve on http://127.0.0.1:8000 with a task worker
#   make test  - set up and run the test suite
# And: make eval - score the assistant on the scenario dialogs (bots/evaluation/scenarios),
#   e.g. make eval EVAL_ARGS="--provider openai --json var/eval.json"
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
EVAL_ARGS ?=

.PHONY: run test eval lint check-deploy migrate clean

$(VENV)/.run-deps: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: $(VENV)/.run-deps requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.run-deps
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py load_demo --if-empty
	$(PY) manage.py replay_spool
	@echo "storebot on http://$(HOST):$(PORT)/  (admin: /admin/, API docs: /api/docs/); Ctrl-C stops"
	@# Both stop on Ctrl-C or on SIGTERM to make's process group (deploy/run_dev.py says how).
	@$(PY) deploy/run_dev.py \
	  "web=$(VENV)/bin/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) --workers $${WEB_CONCURRENCY:-2}" \
	  "worker=nice -n 19 $(PY) manage.py qcluster"

test: $(VENV)/.dev-deps
	$(VENV)/bin/pytest

eval: migrate
	$(PY) manage.py eval $(EVAL_ARGS)

lint: $(VENV)/.dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
