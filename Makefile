# The commands of CONTRACT.md section 1. Each installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)
export PYTHONPATH := $(CURDIR)/runtime:$(CURDIR)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install dev dev-reset test test-unit test-integration test-infrastructure synth bench lint \
	bench-propagation bench-browser drill bench-peer bench-tools

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

dev: $(STAMP)
	exec $(PY) -m local.server

dev-reset: $(STAMP)
	$(PY) -m local.embedded reset

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

# Benchmarks (issue 9): the handler's read paths against DESIGN.md's bars, cold start and memory
# (bench/perf/, bench/results/perf.json), HTTP loads on the local server (bench/http/, bench/results/http.json),
# README's generated sections; then the propagation harness.
bench: $(STAMP) bench-tools
	$(PY) -m bench.perf.in_process
	$(PY) -m bench.http.local_server
	$(PY) -m bench.perf.bulk_bypass
	$(PY) -m bench.readme
	@$(MAKE) --no-print-directory bench-propagation
	@$(MAKE) --no-print-directory bench-browser

# Ours against Unleash 8 (pinned in bench/peer/unleash, installed with npm ci), same machine and client:
# bench/results/peer.json and README's Performance section.
bench-peer: $(STAMP) bench-tools bench/peer/unleash/node_modules/.installed
	$(PY) -m bench.peer.compare
	$(PY) -m bench.readme

# wrk (Debian) for the closed-loop runs; where it cannot be installed, the benches say so and skip them.
bench-tools:
	@command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends wrk; } || echo "wrk is not installed: closed-loop runs skipped"

bench/peer/unleash/node_modules/.installed: bench/peer/unleash/package.json bench/peer/unleash/package-lock.json
	cd bench/peer/unleash && SCARF_ANALYTICS=false npm ci --no-audit --no-fund
	touch $@

# Propagation harness, long form (issue 7): the table, bench/results/propagation.json, README's Consistency section.
# The README is regenerated even when a scenario misses the target; the exit status still says so.
bench-propagation: $(STAMP)
	$(PY) -m bench.consistency.propagation; status=$$?; $(PY) -m bench.readme && exit $$status

# Client-side propagation in headless Chromium (issue 16): the OFREP web provider on the event stream,
# bench/results/browser.json, README's Consistency section.
bench-browser: $(STAMP)
	$(PY) -m bench.consistency.browser_propagation; status=$$?; \
	$(PY) -m bench.consistency.browser_propagation --channel || status=$$?; $(PY) -m bench.readme && exit $$status

# Fault drills, long forms (issue 8): one table, bench/results/drills.json, README's Reliability section.
drill: $(STAMP)
	$(PY) -m bench.drills.suite; status=$$?; $(PY) -m bench.readme && exit $$status

lint: $(STAMP)
	$(PY) -m ruff check runtime local tests stacks bench flagctl app.py
	$(PY) -m mypy runtime/flagservice local
