# strongroom — two entry points for a fresh machine: `make demo` and `make test`.
# Everything else here is what those two need; each step is idempotent and cached.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint unit integration install testenv up down crds bench clean help

help:
	@echo "make demo   - local control plane + OpenBao + CRDs, operator in the foreground"
	@echo "make test   - lint, type-check, layer contracts, unit + integration tests (real servers)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced

testenv: install
	$(PY) -m testenv install

lint: install
	$(VENV)/bin/ruff check src tests testenv bench examples
	$(VENV)/bin/ruff format --check src tests testenv bench examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: install
	$(VENV)/bin/pytest tests/unit

integration: testenv
	$(VENV)/bin/pytest tests/integration

test: lint testenv
	$(VENV)/bin/pytest tests

demo: testenv
	$(PY) -m testenv.demo

up: testenv
	@$(PY) -m testenv up

down:
	@$(PY) -m testenv down

crds: install
	$(VENV)/bin/strongroom crds > charts/strongroom/crds/strongroom.dev.yaml

clean:
	rm -rf $(VENV) $(TOOLS) .testenv .mypy_cache .ruff_cache .pytest_cache
