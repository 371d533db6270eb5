# The two entry points of the README: `make demo` (the web app on a demo workspace) and `make test`.
# Each sets up everything it needs from nothing: a virtual environment, the web build, a browser.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8765

.PHONY: setup demo test lint web browser clean

setup: $(VENV)/.stamp-install

$(VENV)/.stamp-install: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The web app, built into src/slicewise/server/static/ (skipped while web/ has no app yet).
# `npm install` rather than `npm ci`: the lockfile (written without registry addresses) pins every
# version but lists only this platform's optional native packages, which `npm ci` refuses.
web:
	@if [ -f web/package.json ]; then cd web && npm install --no-audit --no-fund && npm run build; fi

# Debian's Chromium for the browser tests (installed only when missing; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: setup web browser lint
	$(BIN)/pytest -n 2 -p no:cacheprovider

demo: setup web
	$(BIN)/slicewise demo --workspace demo-workspace/demo.duckdb --serve --port $(PORT)

clean:
	rm -rf $(VENV) web/node_modules src/slicewise/server/static demo-workspace
