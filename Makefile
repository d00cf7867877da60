# The two commands a newcomer needs are `make demo` and `make test`; both start from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BASE_STAMP := $(VENV)/.installed-base
EMULATORS := emulators/node_modules/.installed

.PHONY: demo test install emulators lint typecheck unit bench schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo needs the package alone (attrs, cattrs, dnslib, rich): no cloud SDK, no test tools.
$(BASE_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Everything the tests, linters and emulator runs need; it includes the base install.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(BASE_STAMP)

install: $(STAMP)

# npm emulators for Azure (Azurite, cosmosdb-server with its 404 fix); pinned in emulators/.
$(EMULATORS): emulators/package.json emulators/package-lock.json
	cd emulators && npm ci --no-audit --no-fund --loglevel=error
	sed -i 's/if (data\[path\] !== clientKeys\[i\])/if (!data || data[path] !== clientKeys[i])/' \
	  emulators/node_modules/@vercel/cosmosdb-server/lib/handler/read-document.js
	touch $@

emulators: $(EMULATORS)

demo: $(BASE_STAMP)
	$(BIN)/multiregion demo

# The spec's JSON Schema, shipped for editors, regenerated from the model after a change.
schema: install
	$(BIN)/multiregion validate --schema > src/multiregion/deployment.schema.json

lint: install
	$(BIN)/ruff check src tests benches examples
	$(BIN)/ruff format --check src tests benches examples

typecheck: install
	$(BIN)/mypy --strict src

# Tests run in parallel workers (one per core, four at most); each starts the emulators it uses.
unit: install emulators
	$(BIN)/pytest -q -n auto --maxprocesses=4

test: lint typecheck unit

# knotd (Debian's knot) is the DNS bench's yardstick; without it that ratio is left out.
bench: install emulators
	command -v knotd >/dev/null || (apt-get update -qq && apt-get install -y -qq knot) \
	  || echo "knotd not installed: the DNS bench reports no ratio"
	$(BIN)/python -m benches

clean:
	rm -rf $(VENV) emulators/node_modules .pytest_cache .mypy_cache
