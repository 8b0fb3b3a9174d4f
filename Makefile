# The commands of CONTRACT.md section 1. Each installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)
export PYTHONPATH := $(CURDIR)/runtime:$(CURDIR)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install dev dev-reset test test-unit test-integration test-infrastructure synth bench lint

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

dev: $(STAMP)
	exec $(PY) -m flagservice.local.server

dev-reset: $(STAMP)
	$(PY) -m flagservice.local.embedded reset

test: $(STAMP) lint
	$(PY) -m pytest tests

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/contract -m "not real"

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration tests/contract

test-infrastructure: $(STAMP)
	$(PY) -m pytest tests/infrastructure

synth: $(STAMP)
	rm -rf cdk.out
	CDK_OUTDIR=cdk.out $(PY) app.py
	@echo "wrote every environment to cdk.out/"

bench: $(STAMP)
	@echo "make bench: placeholder until the benchmarks issue lands (bench/ is empty)"

lint: $(STAMP)
	$(PY) -m ruff check runtime tests stacks bench app.py
	$(PY) -m mypy runtime/flagservice
