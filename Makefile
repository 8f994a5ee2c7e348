# airflow-gke: `make preview` (offline, no cloud account) and `make test` (the whole suite).
STACK ?= dev
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: preview docs rehearse changes golden test unit integration scan bench venv tool-venvs postgres clean lint-workflows

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	@echo "==> [1/4] $(VENV): the program's and tests' pinned packages (requirements.txt; ~1 min on a fresh machine)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

.venv-checkov/.installed: requirements-checkov.txt
	@echo "==> [2/4] .venv-checkov: the policy scanner (requirements-checkov.txt; ~1 min on a fresh machine)"
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

.venv-airflow/.installed: requirements-airflow.txt requirements-airflow-google.txt
	@echo "==> [3/4] .venv-airflow: real Airflow for the integration tests (requirements-airflow*.txt; ~2 min on a fresh machine)"
	test -x .venv-airflow/bin/python || $(PYTHON) -m venv .venv-airflow
	.venv-airflow/bin/pip install -q --disable-pip-version-check -r requirements-airflow.txt
	.venv-airflow/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-airflow-google.txt
	@# pip check may name only the Google provider's requirements skipped on purpose (its full tree is ~2 GB,
	@# requirements-airflow-google.txt); any other complaint (a missing or clashing pin) fails the install.
	! .venv-airflow/bin/pip check | grep -v '^apache-airflow-providers-google [0-9.]* requires '
	touch $@

tool-venvs: .venv-checkov/.installed .venv-airflow/.installed

postgres:
	@echo "==> [4/4] PostgreSQL on 127.0.0.1:5432 for the integration tests (installs Debian's package if missing)"
	bash scripts/ensure-postgres.sh

## Offline preview of STACK (dev|prod): resource tree, build/$(STACK)/resources.json, architecture.svg and manifests/
preview: venv
	$(PY) -m preview --stack $(STACK)

## Regenerate the generated docs: docs/configuration.md (from Pulumi.yaml) and docs/architecture.svg (dev's picture)
docs: venv
	$(PY) -m scripts.config_reference
	$(PY) -m preview --stack dev > /dev/null
	cp build/dev/architecture.svg docs/architecture.svg

## Deploy rehearsal of STACK (or of RESOURCES=path/to/resources.json): replays pulumi up/destroy
## against GCP's documented ordering rules; writes build/$(STACK)/rehearsal.{txt,json,svg}
rehearse: venv
	$(PY) -m rehearse --stack $(STACK)$(if $(RESOURCES), --resources $(RESOURCES))

## Change plan of STACK: for every config key, which resources an alternate value updates or replaces
## (build/$(STACK)/changes.{json,txt}). With BASE=<git ref>: plan the committed change since BASE; prod refuses
## (exit 1) one that replaces data-holding resources unless acknowledged (airflow-gke:acknowledgeReplace).
changes: venv
	$(PY) -m rehearse.changes_cli --stack $(STACK)$(if $(BASE), --base $(BASE))

## Rewrite tests/golden/ (the rendered manifests of a matrix of configurations) after a deliberate change
golden: venv
	$(PY) -m tests.golden_manifests

## Fast suite: unit tests under mocks, manifest schema validation and policy checks
unit: venv .venv-checkov/.installed
	@echo "==> pytest: the fast suite (no integration tests; ~2 min)"
	$(PY) -m pytest -q -m "not integration"

## Whole suite: unit + checkov scan + real PostgreSQL and real Airflow
test: venv tool-venvs postgres
	@echo "==> pytest: the whole suite, unit then real PostgreSQL and Airflow (~10 min on 2 cores; a dot per test)"
	$(PY) -m pytest -q --durations=25

## Lint .github/ (actionlint + shellcheck, pinned in requirements.txt); also part of `make unit`/`make test`
lint-workflows: venv
	$(VENV)/bin/actionlint -shellcheck=$(VENV)/bin/shellcheck

bench: venv tool-venvs postgres
	@echo "==> bench: the benchmark figures (real Airflow, a 10-minute soak; each phase announces itself)"
	$(PY) -m tests.bench

clean:
	rm -rf build .pytest_cache
