# Every target creates .venv when it is missing, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test unit lint schemas bench fuzz chaos clean all

all: lint test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,fast]'
	touch $(STAMP)

install: $(STAMP)

## run: embedded nats-server (unless NATS_URL is set), the offline router (unless a token is set), every consumer
run: $(STAMP)
	$(BIN)/hfbus dev

## test: lint, types, then the whole suite against real nats-servers the suite starts itself
test: $(STAMP) lint
	$(BIN)/python -m pytest -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check schemas services tests
	$(BIN)/ruff format --check schemas services tests
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/python -m services.schemagen

bench: $(STAMP)
	$(BIN)/python -m bench

## chaos: the long failure runs: SIGKILLed consumers, server restarts, cluster node loss
chaos: $(STAMP)
	HFBUS_CHAOS_REQUESTS=400 HFBUS_CHAOS_KILLS=12 $(BIN)/python -m pytest -q -s -m "chaos or integration" \
		tests/integration/test_chaos.py tests/integration/test_server_restart.py tests/integration/test_cluster.py

## fuzz: thousands of hostile messages per tag
fuzz: $(STAMP)
	HFBUS_FUZZ_EXAMPLES=3000 $(BIN)/python -m pytest -q -s tests/fuzz

clean:
	rm -rf $(VENV) .hfbus .pytest_cache .mypy_cache .ruff_cache *.egg-info
