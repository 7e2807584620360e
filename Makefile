# semg-hht: every target creates .venv on first use (CPU torch wheel first, never the CUDA download).
# GPU machines: `make venv TORCH=torch` installs PyPI's default (CUDA) torch build instead.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DEMO := data/demo

.PHONY: venv train test test-all lint bench clean-demo
.DEFAULT_GOAL := train

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

# The main job on built-in, deterministic synthetic demo data.
train: venv
	$(BIN)/python -m semg_hht.data.synthetic --out $(DEMO)/hht
	$(BIN)/python train.py experiment=demo

test: venv
	$(BIN)/python -m pytest -q

# Slow tests too (multirun subprocesses, real-data integration when ../shared is present).
test-all: venv
	$(BIN)/python -m pytest -q -m "not gpu"

lint: venv
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

clean-demo:
	rm -rf $(DEMO)
