# Every target creates .venv when it is missing, so a fresh clone needs nothing else.
# Dependencies come from uv.lock, exactly as CI tested them; uv itself is bootstrapped from PyPI at a pinned version.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)

.PHONY: install run test unit lint browser screenshots schemas readme bench fuzz chaos lock clean all

all: lint test

$(UV):
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync -q --frozen --extra fast
	touch $(STAMP)

install: $(STAMP)

## run: embedded nats-server (unless NATS_URL is set), the offline router (unless a token is set), every consumer
run: $(STAMP)
	$(BIN)/hfbus dev

## test: lint, types, then the whole suite against real nats-servers the suite starts itself
test: $(STAMP) lint browser
	$(BIN)/python -m pytest -q

## browser: Debian's chromium, which the console's browser tests drive (Playwright never downloads a browser here)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium)

## screenshots: run the console's browser tests, saving a screenshot of each screen to docs/console/
screenshots: $(STAMP) browser
	HFBUS_CONSOLE_SCREENSHOTS=docs/console $(BIN)/python -m pytest -q tests/browser

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check schemas services tests
	$(BIN)/ruff format --check schemas services tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

schemas: $(STAMP)
	$(BIN)/python -m services.dev.schemagen

## readme: the README's provider x tag table, regenerated from the adapter registry
readme: $(STAMP)
	$(BIN)/python -m services.dev.provider_table

bench: $(STAMP)
	$(BIN)/python -m bench

## chaos: the long failure runs: SIGKILLed consumers, server restarts, cluster node loss, plain and resumable streams
chaos: $(STAMP)
	HFBUS_CHAOS_REQUESTS=400 HFBUS_CHAOS_KILLS=12 $(BIN)/python -m pytest -q -s -m "chaos or integration" \
		tests/integration/test_chaos.py tests/integration/test_server_restart.py tests/integration/test_cluster.py \
		tests/integration/test_resumable_chaos.py

## fuzz: thousands of hostile messages per tag
fuzz: $(STAMP)
	HFBUS_FUZZ_EXAMPLES=3000 $(BIN)/python -m pytest -q -s tests/fuzz

## lock: re-resolve every dependency to its newest allowed version and rewrite uv.lock (then `make test`, commit)
lock: $(UV)
	$(UV) lock --upgrade

clean:
	rm -rf $(VENV) $(TOOLS) .hfbus .pytest_cache .mypy_cache .ruff_cache *.egg-info
