# Common tasks. `make install` once, then `make test`, `make lint`, `make demo`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast lint format typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned to the CPU build on this project's machines; a loose requirement can pull a CUDA build.
install: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0 -e ".[dev]"

demo:
	$(BIN)/eureka train cartpole --reward human

test:
	$(BIN)/python -m pytest

test-fast:
	$(BIN)/python -m pytest -m "not slow"

lint:
	$(BIN)/ruff check eureka sandbox tests tasks
	$(BIN)/ruff format --check eureka sandbox tests tasks
	$(BIN)/mypy

format:
	$(BIN)/ruff format eureka sandbox tests tasks
	$(BIN)/ruff check --fix eureka sandbox tests tasks

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
