# The two commands a newcomer runs: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/pip install --disable-pip-version-check -q

.PHONY: serve test lint types unit fmt clean migrate bench web

# serve installs only what the service needs; the test tools come with `make test`.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $(STAMP)

# The test tools, and the local EVM node (ganache, from npm) the on-chain tests start.
$(DEV_STAMP): $(STAMP) scripts/install-evm-node.sh
	$(PIP) -e '.[dev]'
	scripts/install-evm-node.sh
	touch $(DEV_STAMP)

serve: $(STAMP)
	$(BIN)/cryptopulse migrate
	$(BIN)/cryptopulse serve --host 127.0.0.1 --port 8000

migrate: $(STAMP)
	$(BIN)/cryptopulse migrate

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(BIN)/pytest -q

test: lint types unit

# Benchmarks stay out of `make test`; results go to docs/benchmarks.md.
bench: $(DEV_STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench ingest
	$(BIN)/python -m bench serialization
	$(BIN)/python -m bench rest
	$(BIN)/python -m bench store
	$(BIN)/python -m bench fanout
	$(BIN)/python -m bench servers
	$(BIN)/python -m bench mixed
	$(BIN)/python -m bench soak --minutes 10 --bus-history 100

# Rebuild the dashboard (web/, npm) into src/cryptopulse/web/static/, which is committed:
# `make serve` needs no npm.
web:
	cd web && npm ci --no-audit --no-fund && npm run build

fmt: $(DEV_STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
