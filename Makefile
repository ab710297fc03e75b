# Violet — every command the README uses. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
BUF := $(BIN)/buf
BUF_AGAINST ?= .git\#branch=main
PYTEST_ARGS ?=
APT_PACKAGES := apertium apertium-eng-spa
# Google's Firestore emulator (tests of the Firestore task store): the package comes from
# Google's Cloud SDK apt repository, Java 17 from Debian.
EMULATOR_PACKAGES := google-cloud-cli google-cloud-cli-firestore-emulator openjdk-17-jre-headless

.DEFAULT_GOAL := help
COQUI_VENV ?= .venv-coqui
.PHONY: help install system-deps gen gen-check lint test test-fast test-coqui up bench clean

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: system-deps $(VENV)/.installed ## Install Python packages into .venv and Apertium (apt, when root)

system-deps: ## Install Apertium English-Spanish and the Firestore emulator with apt (skipped when not root or already there)
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -q $(APT_PACKAGES) >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q $(APT_PACKAGES) >/dev/null)) && \
	  echo "installed $(APT_PACKAGES)"; \
	else echo "note: run 'sudo apt-get install $(APT_PACKAGES)' for document translation"; fi
	@if dpkg -s $(EMULATOR_PACKAGES) >/dev/null 2>&1; then true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -q $(EMULATOR_PACKAGES) >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q $(EMULATOR_PACKAGES) >/dev/null)) && \
	  echo "installed $(EMULATOR_PACKAGES)" || \
	  echo "note: could not install $(EMULATOR_PACKAGES) (Google's Cloud SDK apt repository is needed); Firestore tests skip locally and fail under CI"; \
	else echo "note: run 'sudo apt-get install $(EMULATOR_PACKAGES)' for the Firestore emulator tests"; fi

gen: $(VENV)/.installed ## Regenerate gen/ (Python stubs, .pyi, Envoy descriptor set) from proto/
	rm -rf gen/python/violet gen/violet.binpb
	PATH=$(CURDIR)/$(BIN):$$PATH $(BUF) generate
	touch gen/python/violet/__init__.py gen/python/violet/v1/__init__.py
	$(BUF) build --as-file-descriptor-set -o gen/violet.binpb

gen-check: gen ## Fail when gen/ differs from what `make gen` produces
	@git diff --exit-code --stat -- gen || (echo "gen/ is stale: run 'make gen' and commit" && exit 1)
	@test -z "$$(git status --porcelain -- gen)" || (git status --porcelain -- gen; echo "untracked files in gen/" && exit 1)

lint: $(VENV)/.installed ## buf lint, and buf breaking against main when main exists
	$(BUF) lint
	@if git rev-parse -q --verify main >/dev/null; then $(BUF) breaking --against '$(BUF_AGAINST)'; fi

test: install gen-check lint ## Install, check generated code and contracts, run every test (Coqui in its own venv)
	@free_gb=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$free_gb" -ge 15 ] || [ -f $(COQUI_VENV)/.installed ]; then $(MAKE) --no-print-directory test-coqui; \
	else echo "skipping Coqui TTS tests: $${free_gb} GB free, its torch venv needs about 7 GB (make test-coqui)"; fi
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed ## Run the tests without the install and generation checks
	$(BIN)/pytest $(PYTEST_ARGS)

$(COQUI_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(COQUI_VENV)
	$(COQUI_VENV)/bin/python -m pip install -q --upgrade pip
	$(COQUI_VENV)/bin/python -m pip install -q torch==2.14.1
	$(COQUI_VENV)/bin/python -m pip install -q -e '.[coqui,dev]'
	touch $@

test-coqui: $(COQUI_VENV)/.installed ## Coqui TTS engine tests in their own venv (torch; about 6 GB, 3 min to build)
	$(COQUI_VENV)/bin/pytest tests/coqui $(PYTEST_ARGS)

up: install ## Install, then start proxy, miner, validator and Envoy on embedded defaults (Ctrl-C stops)
	$(BIN)/violet up

bench: $(VENV)/.installed ## Run every benchmark: figures beside their goals, report and plots in bench/results/
	$(PY) bench/run_all.py
	$(PY) bench/video_overhead.py
	$(PY) bench/tts_rtf.py
	@if [ -x $(COQUI_VENV)/bin/python ]; then $(COQUI_VENV)/bin/python bench/tts_rtf.py; \
	else echo "Coqui RTF: build its venv first (make test-coqui)"; fi

clean: ## Remove the venv, local state and caches
	rm -rf $(VENV) .violet .pytest_cache
