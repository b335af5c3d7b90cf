# reclift — developer commands. `make run` and `make test` set up everything they need on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PORT ?= 3000
export PORT
# Test processes (pytest-xdist; 0 runs the suite in one process). Each worker starts its own emulators and local
# stacks. A fifth of the one-process run is spent waiting on them, so two workers on two cores take about two thirds
# of its time (855 s against 1,327 s here), the slowest test 1.6 times its own, every wait far within its bound.
TEST_WORKERS ?= 2

.PHONY: help install run invoke redrive backfill fake-admin test test-fast fuzz lint typecheck bench simulate events build layer-check lock clean

help:
	@echo "make run [DB=dynamodb-local]  the whole stack locally (moto server, routes, queues) on http://127.0.0.1:$$PORT"
	@echo "make clean-data               wipe what make run DB=dynamodb-local keeps across restarts ($(DYNAMODB_DATA)/)"
	@echo "make invoke FN=Id [EVENT=f]   run one function against the running stack (the twin of sam local invoke)"
	@echo "make redrive                  move every DLQ message of the running stack back to its queue"
	@echo "make backfill SHOP=… [TOKEN=…] [WHAT=orders|products|all] [ADMIN_URL=…]"
	@echo "                              a shop's products and orders from the Admin API into the running stack"
	@echo "make fake-admin               a seeded fake Shopify Admin API to backfill from locally"
	@echo "make smoke BASE_URL=… SHOP=…  the README walk-through as one command against a deployment (local or AWS)"
	@echo "make app-config [STACK=reclift] [REGION=…]  the deployed stack's URLs (and \$$SHOPIFY_API_KEY) into shopify.app.toml"
	@echo "make test                     lint, type checks and every test (what CI runs)"
	@echo "make widget                   the storefront widget's minified script, from extensions/src/reclift.js"
	@echo "make fuzz [ARGS=…]            the property and fuzzing tests on new generated inputs (make test repeats fixed ones)"
	@echo "make bench                    the benchmarks; figures under benchmarks/results/"
	@echo "make simulate ARGS='…'        the store simulation (e.g. ARGS='--scenario steady --days 28 --seed 1')"
	@echo "make events [FIXED=1]         the signed sample events under events/, made now (FIXED=1: the committed set)"
	@echo "make build                    sam build (installs the SAM CLI into its own virtualenv on first use)"
	@echo "make layer-check              the layer's locked wheels resolve for the template's Lambda runtime and architecture"
	@echo "make lock                     re-lock layers/reclift/requirements.txt (with hashes) from requirements.in"

# The browser tests drive Debian's Chromium (headless) through Playwright; no browser is downloaded.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get install -y -qq --no-install-recommends chromium || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# The storefront widget's tools (esbuild, Shopify's theme check), pinned by extensions/package-lock.json.
WIDGET_TOOLS := extensions/node_modules/.installed
$(WIDGET_TOOLS): extensions/package.json extensions/package-lock.json
	cd extensions && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

.PHONY: widget
widget: $(WIDGET_TOOLS)
	node extensions/build.mjs

# pip's own output, down to one line per package it fetches, so a first run is never silent for minutes.
SETUP_PROGRESS := awk '/^Collecting / { n++; printf "        %3d %s\n", n, $$2; fflush() } \
	/^Installing collected packages/ { print "        unpacking and installing them"; fflush() }'
$(INSTALLED): requirements-dev.txt layers/reclift/requirements.in layers/reclift/constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "reclift needs Python 3.11 (the Lambda runtime)"'
	@echo "reclift setup: a virtualenv in $(VENV) with the pinned packages (first run only; about a minute when pip"
	@echo "  finds the wheels in its cache or a local index, a few minutes when it downloads them)"
	@echo "  [1/4] creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)
	@echo "  [2/4] upgrading pip"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "  [3/4] installing requirements-dev.txt: the layer's runtime packages, moto, pytest, ruff, mypy…"
	@set -o pipefail; $(BIN)/python -m pip install --progress-bar off -r requirements-dev.txt | $(SETUP_PROGRESS)
	@echo "  [4/4] installing reclift itself (editable: layers/, local/)"
	@out=$$($(BIN)/python -m pip install --quiet --no-deps -e . 2>&1) || { echo "$$out"; exit 1; }
	@touch $@
	@echo "reclift setup: done"

install: $(INSTALLED)

# With DB=dynamodb-local the tables are kept in $(DYNAMODB_DATA)/ across restarts (git-ignored; make clean-data wipes
# them); moto, the default, keeps everything in memory only.
DYNAMODB_DATA := .local/dynamodb
run: $(INSTALLED)
	@echo "starting the local stack: the AWS emulator, template.yaml's tables and queues, a worker per function"
	$(BIN)/python -m reclift_local run --port $(PORT) $(if $(DB),--db $(DB)) \
		$(if $(filter dynamodb-local,$(DB)),--db-data $(DYNAMODB_DATA))

.PHONY: clean-data
clean-data:
	rm -rf $(DYNAMODB_DATA)

invoke: $(INSTALLED)
	@test -n "$(FN)" || { echo "usage: make invoke FN=<LogicalId> [EVENT=events/….json]"; exit 2; }
	$(BIN)/python -m reclift_local invoke $(FN) $(if $(EVENT),--event $(EVENT))

redrive: $(INSTALLED)
	$(BIN)/python -m reclift_local redrive

# The token travels in the environment, never on a command line (or in make's echo of one).
backfill: $(INSTALLED)
	@test -n "$(SHOP)" || { echo "usage: make backfill SHOP=<shop>.myshopify.com [TOKEN=…] [WHAT=orders|products|all]"; exit 2; }
	@RECLIFT_ADMIN_TOKEN="$$TOKEN" $(BIN)/python -m reclift_local backfill --shop "$(SHOP)" --what "$(or $(WHAT),all)" \
		$(if $(ADMIN_URL),--admin-url "$(ADMIN_URL)") $(if $(RESTART),--restart)

fake-admin: $(INSTALLED)
	$(BIN)/python -m reclift_local fake-admin $(ARGS)

# The app's secret and API key come from the environment (SHOPIFY_API_SECRET, SHOPIFY_API_KEY), never a command line.
.PHONY: smoke app-config
smoke: $(INSTALLED)
	@test -n "$(BASE_URL)" -a -n "$(SHOP)" || { echo "usage: make smoke BASE_URL=<ApiUrl> SHOP=<shop>.myshopify.com [ARGS='--timeout 120']"; exit 2; }
	$(BIN)/python -m reclift_local smoke --base-url "$(BASE_URL)" --shop "$(SHOP)" $(ARGS)

# Writes the deployed stack's ApiUrl, AppProxyUrl and WebhookUrl outputs (and client_id from SHOPIFY_API_KEY, if set)
# into shopify.app.toml; the rest of the file is kept byte for byte.
app-config: $(INSTALLED)
	$(BIN)/python -m reclift_local app-config $(if $(STACK),--stack "$(STACK)") $(if $(REGION),--region "$(REGION)")

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy layers local functions tests benchmarks

test: lint typecheck $(CHROMIUM) $(WIDGET_TOOLS)
	$(BIN)/python -m reclift_local.sample_events --check
	$(BIN)/pytest -n $(TEST_WORKERS)

test-fast: $(INSTALLED) $(WIDGET_TOOLS)
	$(BIN)/pytest tests/unit tests/template -q

# `make test` runs the same generated inputs every time; this draws new ones on every run.
fuzz: $(INSTALLED)
	RECLIFT_HYPOTHESIS_EXPLORE=1 $(BIN)/pytest tests/unit tests/integration/test_fuzz.py -k "not dynamodb" \
		-p no:logging -q --hypothesis-show-statistics $(ARGS)

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks $(ARGS)

simulate: $(INSTALLED)
	$(BIN)/python -m benchmarks.simulate $(ARGS)

events: $(INSTALLED)
	$(BIN)/python -m reclift_local.sample_events $(if $(FIXED),--fixed)

# The SAM CLI pins its own boto3, botocore and click: it lives in a virtualenv of its own (SAM_VENV=… for another).
SAM_VENV ?= .venv-sam
SAM_CLI_VERSION := 1.170.0
$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)

# sam build installs the layer from its lock (layers/reclift/requirements.txt, hashed): only wheels for the template's
# runtime and architecture, so a dependency without one fails here, not on Lambda. sam build ships no bytecode, and
# Lambda's file system is read-only, so every cold start would compile each module it imports from source (about 3x
# the handler's import time: benchmarks/build_artifacts.py): the build is compiled here, by the SAM venv's Python
# (the runtime's version), into unchecked-hash .pyc files that stay valid whatever times the zip gives the sources.
build: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam build
	$(SAM_VENV)/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

layer-check: $(INSTALLED)
	$(BIN)/pytest tests/template/test_build.py -q -p no:cacheprovider

# The layer's lock, resolved for Lambda (python3.11 on manylinux2014 x86_64: Amazon Linux 2, glibc 2.26) whatever the
# machine, every distribution's hash included. uv runs from a throwaway virtualenv; the command lands in the lock's
# header, and tests/template/test_build.py checks it against template.yaml.
UV_VERSION := 0.13.9
LAYER_LOCK := layers/reclift/requirements.txt
LAYER_CONSTRAINTS := layers/reclift/constraints.txt
LAYER_LOCK_ARGS := layers/reclift/requirements.in --python-version 3.11 --python-platform x86_64-manylinux2014 \
	--only-binary :all: --generate-hashes --output-file $(LAYER_LOCK)
lock:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp" && "$$tmp/bin/python" -m pip install --quiet uv==$(UV_VERSION) && \
	"$$tmp/bin/uv" pip compile --quiet $(LAYER_LOCK_ARGS) \
		--custom-compile-command "make lock, which runs uv $(UV_VERSION): uv pip compile $(LAYER_LOCK_ARGS)"
	@{ echo "# $(LAYER_LOCK) without its hashes, made by make lock: requirements-dev.txt's constraints (a hashed"; \
	   echo "# constraint would turn pip's hash checking on for every development requirement)."; \
	   sed -e '/^ *--hash=/d' -e 's/ \\$$//' $(LAYER_LOCK); } > $(LAYER_CONSTRAINTS)
	@echo "$(LAYER_LOCK) and $(LAYER_CONSTRAINTS) locked; make install brings .venv in line with them"

clean:
	rm -rf .aws-sam .reclift .pytest_cache .mypy_cache .ruff_cache
