# Common tasks: `make install test` on a fresh machine; then `make lint`, `make demo`.
# `make install LOCAL=0` skips the embedded local model (llama-cpp-python, a ~10-minute build):
# enough for anyone who uses a provider's API (--model gpt-4o, ...); its tests are then skipped.
PYTHON ?= python3
LOCAL ?= 1
VENV ?= .venv
BIN := $(VENV)/bin
WHEELS ?= $(HOME)/.cache/eureka/wheels
LLAMA_VERSION := 0.3.36
# A portable AVX2 build of llama.cpp: the native build picks AMX on this project's machines,
# which their kernel does not enable, and crashes on the first token.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: install system-deps demo test test-fast lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU build on this project's machines; a loose requirement pulls CUDA (GBs).
# llama-cpp-python (the embedded local model) is built once, ~10 minutes, and kept in $(WHEELS).
install: $(BIN)/python system-deps
	$(BIN)/pip install -q torch==2.13.0
ifeq ($(LOCAL),0)
	@echo "LOCAL=0: skipping the embedded local model (llama-cpp-python); use a provider (--model gpt-4o, ...)"
	$(BIN)/pip install -q -e ".[dev]"
else
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
		echo "building llama-cpp-python $(LLAMA_VERSION) once (about 10 minutes), for the embedded local model;"; \
		echo "if you use a provider's API instead, interrupt and run: make install LOCAL=0"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-deps -w $(WHEELS) \
			llama-cpp-python==$(LLAMA_VERSION); }
	$(BIN)/pip install -q $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(BIN)/pip install -q -e ".[dev,local]"
endif
	@echo "installed; \`$(BIN)/eureka doctor\` shows the isolation, rendering, GPU, model and keys found here"

# System packages, installed here when we are root on Debian/Ubuntu (otherwise a note says what
# to install): bubblewrap, the sandbox's isolation (without it eureka isolates with util-linux's
# `unshare` where user namespaces work, else runs generated code unisolated and says so loudly);
# chromium, for the browser tests of the ranking page and report.
SYSTEM_PACKAGES := bubblewrap:bwrap chromium:chromium
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
		command -v $${pair#*:} >/dev/null 2>&1 || missing="$$missing $${pair%%:*}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing$$missing (apt-get)"; \
			apt-get install -y -q $$missing >/dev/null 2>&1 || \
				{ apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; }; \
		else \
			echo "note: install$$missing (e.g. sudo apt-get install$$missing) for isolation and browser tests"; \
		fi; fi

demo:
	$(BIN)/eureka solve mountain_car_continuous --model replay:examples/mountain_car_demo --iterations 2 \
		--samples 3 --timesteps 8000 --eval-seeds 5

test:
	$(BIN)/python -m pytest

test-fast:
	$(BIN)/python -m pytest -m "not slow"

lint:
	$(BIN)/ruff check eureka sandbox tests tasks examples bench
	$(BIN)/ruff format --check eureka sandbox tests tasks examples bench
	$(BIN)/mypy

format:
	$(BIN)/ruff format eureka sandbox tests tasks examples bench
	$(BIN)/ruff check --fix eureka sandbox tests tasks examples bench

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
