# The two quick-start commands: `make run` and `make test`.
PY ?= python3
PIP = $(PY) -m pip install --quiet --disable-pip-version-check
# Pinned so pip takes the local CPU wheel instead of several GB of CUDA packages.
TORCH = torch==2.13.0

.PHONY: run test test-fast install install-test system-deps lint

install:
	$(PIP) $(TORCH) -e .

run: install
	askdocs ui

system-deps:
	@command -v chromium >/dev/null && fc-list | grep -qi "noto.*cjk" || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

install-test: system-deps
	$(PIP) $(TORCH) -e '.[test]'

test: install-test
	ruff check .
	$(PY) -m pytest -q

# The fast layer: no real model, browser or LLM server (about a minute on two cores).
FAST = not model and not browser and not llm
test-fast:
	ruff check .
	$(PY) -m pytest -q -m "$(FAST)"

lint:
	ruff check . && ruff format --check .
