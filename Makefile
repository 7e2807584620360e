# semg-hht: every target creates .venv on first use (CPU torch wheel first, never the CUDA download).
# GPU machines: `make venv TORCH=torch` installs PyPI's default (CUDA) torch build instead.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DEMO := data/demo
DEMO_RUN := logs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: venv train test test-all lint bench clean-demo eval-real
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

# All benchmarks with small defaults (train 3/5/7 layers x fp32/bf16 vs the seed's loop, load 500 files
# with and without the cache, predict, hht) as one table; `python bench/all.py --quick` takes ~30 s.
bench: venv
	$(BIN)/python bench/all.py

# Slow tests too (multirun subprocesses, real-data integration when ../shared is present).
test-all: venv
	$(BIN)/python -m pytest -q -m "not gpu"

lint: venv
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

clean-demo:
	rm -rf $(DEMO)

# Results on real sEMG (../shared/data/muscletracker, a development subset): the whole table as
# Markdown + CSV in $(EVAL_RUN)/table. movement = 5 hand movements (a stand-in for the movement target).
# CPU-sized CNN by default; GPU machines: make eval-real REAL_GPU=1 HARDWARE="1x H100"
# The random-encoder SVM uses the tuned CNN's architecture (untrained); the classic rows take seconds.
REAL_RAW ?= ../shared/data/muscletracker/manifest.csv
REAL_HHT ?= data/muscletracker_hht_stacked
REAL_GPU ?=
ifeq ($(REAL_GPU),1)
REAL_TUNED := ,muscletracker_gpu
REAL_SEED := trainer=gpu
endif
HARDWARE ?= 2-core CPU
EVAL_RUN := logs/eval_real/$(shell date +%Y-%m-%d_%H-%M-%S)
FOLDS := data.fold=0,1,2,3,4
JOB := hydra.sweep.subdir='$${hydra.job.num}'
comma := ,
CKPTS = $(subst $() ,$(comma),$(foreach i,0 1 2 3 4,$(EVAL_RUN)/$(1)/$(i)/checkpoints/best.ckpt))

eval-real: venv
	$(BIN)/python make_hht.py input=$(REAL_RAW) output=$(REAL_HHT) filter.notch_hz=60 filter.notch_harmonics=3 \
		layout.stack_channels=true progress=false
	for t in movement gender; do \
	  $(BIN)/python train.py -m "experiment=[muscletracker_$$t$(REAL_TUNED)]" $(FOLDS) paths.data_dir=$(REAL_HHT) \
	    hydra.sweep.dir=$(EVAL_RUN)/cnn_tuned_$$t $(JOB) && \
	  $(BIN)/python train.py -m "experiment=[muscletracker_$$t,seed_cnn]" model.in_channels=2 scheduler.warmup_epochs=0 \
	    $(REAL_SEED) $(FOLDS) paths.data_dir=$(REAL_HHT) hydra.sweep.dir=$(EVAL_RUN)/cnn_seed_$$t $(JOB) && \
	  $(BIN)/python fit_svm.py -m ckpt=null data=muscletracker_$$t target=$$t model.in_channels=2 \
	    model.base_channels=8 model.num_layers=6 $(FOLDS) \
	    paths.data_dir=$(REAL_HHT) hydra.sweep.dir=$(EVAL_RUN)/random_encoder_svm_$$t $(JOB) || exit 1; \
	done
	$(BIN)/python fit_svm.py -m ckpt=$(call CKPTS,cnn_tuned_gender) target=gender \
		hydra.sweep.dir=$(EVAL_RUN)/cnn_encoder_svm_gender $(JOB)
	$(BIN)/python -m semg_hht.evaluation --raw $(REAL_RAW) --out $(EVAL_RUN)/table --hardware "$(HARDWARE)" \
		--experiment muscletracker_movement --experiment muscletracker_gender \
		--sweep movement "CNN tuned (stacked channels)" $(EVAL_RUN)/cnn_tuned_movement \
		--sweep movement "CNN seed config (seed_cnn)" $(EVAL_RUN)/cnn_seed_movement \
		--sweep movement "SVM on random frozen encoder" $(EVAL_RUN)/random_encoder_svm_movement \
		--sweep gender "CNN tuned (stacked channels)" $(EVAL_RUN)/cnn_tuned_gender \
		--sweep gender "CNN seed config (seed_cnn)" $(EVAL_RUN)/cnn_seed_gender \
		--sweep gender "SVM on random frozen encoder" $(EVAL_RUN)/random_encoder_svm_gender \
		--sweep gender "gender SVM on the tuned CNN encoder" $(EVAL_RUN)/cnn_encoder_svm_gender
