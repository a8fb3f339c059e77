# kuroshio — set-up, demo, tests and benchmarks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser picture: built from web/ into the package, served by every node at /.
WEB_BUILT := src/kuroshio/web/dist/index.html
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck pytest bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(WEB_BUILT)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# The browser tests drive Debian's chromium (no browser is downloaded by playwright), with
	@# CJK fonts so that the 中文 and 日本語 names render in the screenshots; the KML export is
	@# read back by GDAL's ogrinfo (gdal-bin); systemd's own systemd-analyze checks deploy/'s unit;
	@# a Prometheus server scrapes a node's /metrics and promtool checks deploy/'s alert rules.
	{ command -v chromium >/dev/null && test -d /usr/share/fonts/opentype/noto && command -v ogrinfo >/dev/null && command -v systemd-analyze >/dev/null && command -v promtool >/dev/null; } || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium fonts-noto-cjk gdal-bin systemd prometheus; }
	@touch $@

$(WEB_BUILT): web/package.json web/package-lock.json web/build.mjs $(wildcard web/src/*)
	command -v npm >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends nodejs npm; }
	cd web && npm ci --no-audit --no-fund && npm run build

demo: $(STAMP)
	$(BIN)/kuroshio demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/kuroshio

pytest: $(STAMP)
	$(BIN)/pytest -q -ra

test: lint typecheck pytest

# make bench BENCH_ARGS=--quick for a scaled-down run; see docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info demo-nodes web/node_modules src/kuroshio/web/dist
