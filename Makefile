# strongroom — two entry points for a fresh machine: `make demo` and `make test`.
# Everything else here is what those two need; each step is idempotent and cached.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-node lint unit integration install testenv testenv-node up down crds bench clean help

help:
	@echo "make demo   - local control plane + OpenBao + CRDs, operator in the foreground"
	@echo "make test   - lint, type-check, layer contracts, unit + integration tests (real servers)"
	@echo "make test-node - the tests that need a real node (kubelet, chart pod; root)"

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
	$(VENV)/bin/ruff check src tests testenv bench examples container
	$(VENV)/bin/ruff format --check src tests testenv bench examples container
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: install
	$(VENV)/bin/pytest tests/unit

integration: testenv
	$(VENV)/bin/pytest -m "not node" tests/integration

# The `node` group needs root and a kubelet (testenv.node); it runs in its own session because every
# server binds the pod bridge's address there (STRONGROOM_TESTENV_HOST), not 127.0.0.1.
NODE_HOST := 10.244.0.1

test: lint testenv
	$(VENV)/bin/pytest -m "not node" tests
	$(MAKE) test-node

testenv-node: install
	$(PY) -m testenv install --node

test-node: testenv-node
	STRONGROOM_TESTENV_HOST=$(NODE_HOST) $(VENV)/bin/pytest -m node tests/integration

# The demo runs the example app's pods on a real node (root; testenv.node), hence the node's address.
demo: testenv-node
	STRONGROOM_TESTENV_HOST=$(NODE_HOST) $(PY) -m testenv.demo

up: testenv
	@$(PY) -m testenv up

down:
	@$(PY) -m testenv down

crds: install
	$(VENV)/bin/strongroom crds > charts/strongroom/crds/strongroom.dev.yaml

clean:
	rm -rf $(VENV) $(TOOLS) .testenv .mypy_cache .ruff_cache .pytest_cache
