# semg-hht: every target creates .venv on first use (CPU torch wheel first, never the CUDA download).
# GPU machines: `make venv TORCH=torch` installs PyPI's default (CUDA) torch build instead.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DEMO := data/demo
DEMO_RUN := logs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: venv train test test-all lint bench clean-demo
.DEFAULT_GOAL := train

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

# The main job on built-in, deterministic synthetic demo data: raw sEMG -> HHT matrices -> movement
# CNN (subject-disjoint validation) -> gender SVM on its frozen encoder -> predictions for recordings
# of two people the models have never seen. Reruns skip matrices that already exist.
train: venv
	$(BIN)/python -m semg_hht.synth --out $(DEMO)/raw --subjects 8 --reps 8 --overwrite
	$(BIN)/python make_hht.py input=$(DEMO)/raw/manifest.csv output=$(DEMO)/hht progress=false
	$(BIN)/python -m semg_hht.synth --out $(DEMO)/new_raw --subjects 2 --reps 1 --seed 1 --overwrite
	$(BIN)/python make_hht.py input=$(DEMO)/new_raw/manifest.csv output=$(DEMO)/new progress=false
	$(BIN)/python train.py experiment=demo hydra.run.dir=$(DEMO_RUN)
	$(BIN)/python fit_svm.py ckpt=$(DEMO_RUN)/checkpoints/best.ckpt hydra.run.dir=$(DEMO_RUN)/svm
	$(BIN)/python predict.py ckpt=$(DEMO_RUN)/checkpoints/best.ckpt svm=$(DEMO_RUN)/svm/svm.skops \
		input=$(DEMO)/new hydra.run.dir=$(DEMO_RUN)/predict

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
