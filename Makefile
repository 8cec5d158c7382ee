# `make run` trains the main job (MNIST MLP GAN); `make test` lints and runs the suite.
# Both create .venv (the project installed editable, with test extras) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: venv test run lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two pytest workers: the suite is mostly single-threaded XLA compilation (tests/conftest.py
# also compiles at LLVM level 1). The multi-device tests need 8 devices; on a CPU they are
# simulated (XLA host platform).
test: lint
	$(BIN)/pytest -q -n 2 --ignore=tests/multidevice
	XLA_FLAGS=--xla_force_host_platform_device_count=8 $(BIN)/pytest -q -n 2 tests/multidevice

run: venv
	$(BIN)/python -m jaxgan.experiments.mnist $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
