# The two entry points of the README: `make demo` (the web app on a demo workspace) and `make test`.
# Each sets up everything it needs from nothing: a virtual environment, the web build, a browser.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8765

.PHONY: setup demo test lint web web-check browser clean FORCE

setup: $(VENV)/.stamp-install

$(VENV)/.stamp-install: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The web app, built into src/slicewise/server/static/ (git-ignored). Three steps, each skipped when
# its inputs did not change, so a repeated `make test` does not rebuild:
# 1. `npm ci` installs exactly the lockfile (which lists every platform's optional packages, so it is
#    the same file everywhere) when package.json or the lockfile is newer than the last install;
# 2. the server's OpenAPI schema is written to web/openapi.json (git-ignored; rewritten only when it
#    changed), from which the build generates the app's API types (web/src/lib/api-types.ts, ignored);
# 3. `npm run build` (vite) when a source, the schema or the install is newer than the build.
WEB_STAMP := web/node_modules/.stamp-ci
WEB_BUILD := src/slicewise/server/static/index.html
WEB_INPUTS := $(shell find web/src web/scripts -type f 2>/dev/null) web/index.html web/vite.config.ts \
  web/svelte.config.js web/tsconfig.json

web: $(WEB_BUILD)

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/openapi.json: setup FORCE
	$(BIN)/python -m slicewise.server.openapi $@

$(WEB_BUILD): $(WEB_STAMP) web/openapi.json $(WEB_INPUTS)
	cd web && npm run build

# svelte-check: the web app type-checks against the generated API types
web-check: $(WEB_STAMP) web/openapi.json
	cd web && npm run check

FORCE:

# Debian's Chromium for the browser tests (installed only when missing; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: setup web browser lint web-check
	$(BIN)/pytest -n 2 -p no:cacheprovider

demo: setup web
	$(BIN)/slicewise demo --workspace demo-workspace/demo.duckdb --serve --port $(PORT)

clean:
	rm -rf $(VENV) web/node_modules web/openapi.json web/src/lib/api-types.ts src/slicewise/server/static demo-workspace
