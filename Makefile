# One entry point for the checks CI runs.
PY ?= .venv/bin/python
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/printsync_drift

.PHONY: check lint types imports test drift format

check: lint types imports drift test

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check api workers storage metrics printsync

types:
	$(PY) -m mypy

imports:
	.venv/bin/lint-imports

drift:
	$(PY) -m tests.drift

test:
	$(PY) -m pytest -n 2

format:
	$(PY) -m ruff format api workers storage metrics printsync
	$(PY) -m ruff check --fix .
