# Courtyard — every developer and CI task is a target here. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)
PYTEST_ARGS ?=

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Courtyard needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv and install Courtyard with its development tools

WEB_STAMP := web/node_modules/.installed-$(shell cat web/package-lock.json 2>/dev/null | sha256sum | cut -c1-16)

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found (Node.js 20 builds the browser assets)"; exit 1; }
	cd web && npm ci --no-audit --no-fund --ignore-scripts
	rm -f web/node_modules/.installed-*
	touch $(WEB_STAMP)

WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

# The client (vite build empties web/dist), then the vendored Redoc bundle for the API docs.
web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES) web/scripts/vendor.mjs
	cd web && ./node_modules/.bin/vite build --logLevel warn && node scripts/vendor.mjs

.PHONY: build
build: install web/dist/index.html ## Install and build the browser client and assets (web/dist; never committed)

.PHONY: web-test
web-test: $(WEB_STAMP) ## Type-check the web client and run its unit tests (Vitest)
	cd web && ./node_modules/.bin/tsc --noEmit -p . && ./node_modules/.bin/vitest run

.PHONY: migrate
migrate: install ## Create or upgrade the database schema
	$(BIN)/courtyard migrate

.PHONY: run
run: build migrate ## Install, build, migrate and serve on http://127.0.0.1:8080 (SQLite in ./data)
	$(BIN)/courtyard serve

.PHONY: lint
lint: install ## ruff (lint + format check), mypy --strict, import-linter layer contracts
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: format
format: install ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

.PHONY: test-sqlite
test-sqlite: install ## The test suite on embedded SQLite
	$(BIN)/pytest --db sqlite $(PYTEST_ARGS)

.PHONY: test-postgres
test-postgres: install ## The test suite on PostgreSQL (127.0.0.1:5432)
	$(BIN)/pytest --db postgres $(PYTEST_ARGS)

.PHONY: test
test: build ## Everything CI runs: lint, web unit tests, then the suite on SQLite and then on PostgreSQL
	$(MAKE) lint
	$(MAKE) web-test
	@# One after the other, both always run (-k): on two cores the pair in parallel took
	@# 18.7 and 20.4 min against 7.1 and 8.6 min alone (README).
	$(MAKE) -k test-sqlite test-postgres

.PHONY: check
check: test ## Alias of `make test` (exactly what CI runs)

SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)

.PHONY: clamd
clamd: ## Install Debian's clamav-daemon if missing (the virus-scan tests start their own clamd)
	@command -v clamd >/dev/null || test -x /usr/sbin/clamd || { \
	  echo "installing clamav-daemon (Debian package)"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends clamav-daemon; }
	@$$(command -v clamd || echo /usr/sbin/clamd) --version

.PHONY: chromium
chromium: ## Install Debian's chromium, CJK and emoji fonts if missing (the browser tests drive /usr/bin/chromium)
	@test -x /usr/bin/chromium && fc-list 2>/dev/null | grep -qi "noto.*cjk" && fc-list 2>/dev/null | grep -qi "color emoji" || { \
	  echo "installing chromium, fonts-noto-cjk and fonts-noto-color-emoji (Debian packages)"; \
	  $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk fonts-noto-color-emoji; }
	@/usr/bin/chromium --version 2>/dev/null

.PHONY: web-bench
web-bench: build chromium ## Web client: first-load size, click-to-50-messages-painted, scrolling 10,000 messages (frame times, long tasks) and typing latency quiet and under 20 messages/s (docs/benchmarks.md)
	$(BIN)/python -m tests.web.bench

.PHONY: screenshots
screenshots: build chromium ## Photograph the web client (light, dark, Chinese, phone) into docs/screenshots/
	$(BIN)/python -m tests.web.screenshots

.PHONY: clean
clean: ## Remove caches (keeps .venv and ./data)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist

BENCH_DEPS := $(BIN)/python -c "import matplotlib, psutil, httpx" 2>/dev/null && test -x $(BIN)/py-spy || $(BIN)/python -m pip install --quiet -e ".[dev,bench]"

.PHONY: bench
bench: install ## Benchmarks, short (<= 5 min): every scenario vs targets T1-T10 (docs/benchmarks.md)
	@$(BENCH_DEPS)
	$(BIN)/python -m bench $(BENCH_ARGS)

.PHONY: bench-full
bench-full: install ## Benchmarks at full size (about an hour): 10k channel, 10M messages, 100k sockets
	@$(BENCH_DEPS)
	$(BIN)/python -m bench --full $(BENCH_ARGS)
