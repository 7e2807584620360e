# semg-hht: every target creates .venv on first use (CPU torch wheel first, never the CUDA download).
# GPU machines: `make venv TORCH=torch` installs PyPI's default (CUDA) torch build instead.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DEMO := data/demo
DEMO_RUN := logs/demo/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: venv train test test-all test-gpu lint bench clean-demo eval-real
.DEFAULT_GOAL := train

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

# The main job on built-in, deterministic synthetic demo data: raw sEMG -> HHT matrices -> movement
# CNN (subject-disjoint validation) -> gender SVM on its frozen encoder -> the CNN adapted to two people it
# has never seen (one repetition of each class), mixed with a classic SVM of each person alone -> predictions
# for their recordings. Reruns skip matrices that already exist.
train: venv
	$(BIN)/python -m semg_hht.synth --out $(DEMO)/raw --subjects 8 --reps 8 --overwrite
	$(BIN)/python make_hht.py input=$(DEMO)/raw/manifest.csv output=$(DEMO)/hht progress=false
	$(BIN)/python -m semg_hht.synth --out $(DEMO)/new_raw --subjects 2 --reps 3 --seed 1 --overwrite
	$(BIN)/python make_hht.py input=$(DEMO)/new_raw/manifest.csv output=$(DEMO)/new progress=false
	$(BIN)/python train.py experiment=demo hydra.run.dir=$(DEMO_RUN)
	$(BIN)/python fit_svm.py ckpt=$(DEMO_RUN)/checkpoints/best.ckpt hydra.run.dir=$(DEMO_RUN)/svm
	$(BIN)/python adapt.py ckpt=$(DEMO_RUN)/checkpoints/best.ckpt input=$(DEMO)/new/manifest.csv \
		'support={repetition:[1]}' raw=$(DEMO)/new_raw/manifest.csv hydra.run.dir=$(DEMO_RUN)/adapt
	$(BIN)/python predict.py ckpt=$(DEMO_RUN)/checkpoints/best.ckpt svm=$(DEMO_RUN)/svm/svm.skops \
		input=$(DEMO)/new/manifest.csv hydra.run.dir=$(DEMO_RUN)/predict

test: venv
	$(BIN)/python -m pytest -q

# All benchmarks with small defaults (train 3/5/7 layers x fp32/bf16 vs the seed's loop, load 500 files
# with and without the cache, predict, hht) as one table; `python -m bench.all --quick` takes ~30 s.
bench: venv
	$(BIN)/python -m bench.all

# Slow tests too (multirun subprocesses, real-data integration when ../shared is present).
test-all: venv
	$(BIN)/python -m pytest -q -m "not gpu"

# GPU machines (after `make venv TORCH=torch`): the GPU tests (no host sync in a step, a compiled run's
# checkpoint, bf16 SVM features) and the training benchmark on the GPU (an H200: ~1 min in all).
test-gpu: venv
	$(BIN)/python -m pytest -q -m gpu
	$(BIN)/python -m bench.train --device cuda --layers 3 5 7 --steps 40 --warmup 10 --repeats 2

lint: venv
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

clean-demo:
	rm -rf $(DEMO)

# Results on real sEMG (../shared/data/muscletracker, a development subset): the whole table as
# Markdown + CSV in $(EVAL_RUN)/table. movement = 5 hand movements (a stand-in for the movement target),
# on Biopac (the recipe was chosen on its CV folds 0-2; the augmentations on folds 0-2 of both devices) and on MioTracker with the same recipe unchanged.
# 15-26 minutes on a 2-core AMD EPYC (AVX2 only; 2026-12-04: 23 min 11 s with four final models per row, 17.5 training, 5.7 evaluate.py) plus the 64x64 conversion (~2 min) on first use.
# The experiments hold people out as a test set (4 of 24 Biopac, 3 of 14 MioTracker: data.test_filter):
# every method cross-validates on the others (subject folds), then its final model, fitted on all of
# them (data.split=none), is scored once on the test people. CPU: the tuned CPU-sized CNN (model=cnn_small
# on 64x64 matrices), its random-encoder SVM, the gender SVM on its encoder, the classic baselines and the
# linear control; and the per-person calibrated rows (data.person_norm: each person standardised by their
# own unlabelled recordings) of the CNN, the classic features and the linear control. GPU machines add the seed-config CNN (256x256, base 64): make eval-real REAL_GPU=1 HARDWARE="1x H100"
REAL_RAW ?= ../shared/data/muscletracker/manifest.csv
REAL_HHT ?= data/muscletracker_hht64_log
REAL_HHT256 ?= data/muscletracker_hht256
REAL_GPU ?=
# the machine a table was measured on (results.md's header): by default this CPU's model, cores and widest
# vector unit (this project's machines change between sessions); on a GPU machine e.g. HARDWARE="1x H100"
CPU = $(shell lscpu | sed -n 's/^Model name: *//p' | head -1), $(shell nproc) cores, \
	$(shell grep -qw amx_tile /proc/cpuinfo && echo AMX || (grep -qw avx512_bf16 /proc/cpuinfo && echo avx512_bf16 || echo AVX2 only))
HARDWARE ?= $(CPU)
HHT_REAL := filter.notch_hz=60 filter.notch_harmonics=3 layout.stack_channels=true progress=false
# the tuned recipe's axis: 64 rows evenly spaced in log frequency over each recording's band-pass
HHT_LOG := spectrum.size=64 spectrum.freq_range=band spectrum.freq_scale=log
EVAL_RUN := logs/eval_real/$(shell date +%Y-%m-%d_%H-%M-%S)
# the adaptation rows' other recipes, beside adapt.* (conf/adaptation/default.yaml): the naive head refit (the
# linear head alone, no augmentation, from the trained head, channels as recorded), the baseline issue 30 measured
# outside the tool; and the default without its channel search (what reading swapped leads back buys)
ADAPT_COMPARE := {naive head refit:{method:head,augment:false,prototype_init:false,channel_order:keep}, \
	full without the channel search:{channel_order:keep}}
FOLDS := data.fold=0,1,2,3,4
# Every final model is trained once per seed and its test figure is their mean ± std: on 60 test recordings
# one model's figure moves with the seed by several points (README "Results on real sEMG"). 42 is the seed
# every CV sweep trains with (conf/train.yaml), 0-2 three more: every seed a final model was ever run with.
FINAL_SEEDS ?= 42,0,1,2
FINAL := seed=$(FINAL_SEEDS)
JOB := hydra.sweep.subdir='$${hydra.job.num}'
comma := ,
FINAL_JOBS := $(shell seq 0 $$(( $(words $(subst $(comma), ,$(FINAL_SEEDS))) - 1 )))
# The gender SVM reads each fold's (each final model's) last-epoch encoder: nothing in it was chosen on the
# validation fold.
CKPTS = $(subst $() ,$(comma),$(foreach i,$(2),$(EVAL_RUN)/$(1)/$(i)/checkpoints/last.ckpt))
TUNED := CNN tuned (cnn_small$(comma) 64x64$(comma) log input$(comma) time pooling)
# one table row: target, label, the fold sweep, the final model's run (its test figure); MIX: and its
# CNN + classic row (evaluate.py's ensemble.*: the CNN's probabilities averaged with the windowed classic SVM's)
ROW = {target:$(1),label:"$(2)",dir:$(EVAL_RUN)/$(3),final:$(EVAL_RUN)/$(3)_final$(4)}
MIX = $(call ROW,$(1),$(2),$(3),$(comma)ensemble:true)
# ... and its few-shot adaptation rows (evaluate.py's adaptation.*: every fold model adapted to each validation
# person on k=1 and k=2 of their repetitions, every final model to each test person; classic twins on the same splits;
# and the adapted CNN mixed with the person-alone windowed SVM, adaptation.mixture)
ADAPTED = $(call ROW,$(1),$(2),$(3),$(comma)ensemble:true$(comma)adapt:true)
BIOPAC := "movement (biopac)"
MIO := "movement (miotracker)"
GENDER := "gender (miotracker)"
EVAL_SWEEPS := $(call ADAPTED,$(BIOPAC),$(TUNED),cnn_tuned_movement), \
	$(call MIX,$(BIOPAC),$(TUNED)$(comma) per-person standardised,cnn_calibrated_movement), \
	$(call ROW,$(BIOPAC),SVM on random frozen encoder,random_encoder_svm_movement), \
	$(call ADAPTED,$(MIO),$(TUNED)$(comma) the Biopac recipe unchanged,cnn_tuned_mio_movement), \
	$(call MIX,$(MIO),$(TUNED)$(comma) per-person standardised,cnn_calibrated_mio_movement), \
	$(call ROW,$(GENDER),$(TUNED),cnn_tuned_gender), \
	$(call ROW,$(GENDER),gender SVM on the tuned CNN encoder,cnn_encoder_svm_gender), \
	$(call ROW,$(GENDER),SVM on random frozen encoder,random_encoder_svm_gender)
ifeq ($(REAL_GPU),1)
REAL_TUNED := ,muscletracker_gpu
EVAL_SWEEPS += ,$(call ROW,$(BIOPAC),CNN seed config (seed_cnn),cnn_seed_movement), \
	$(call ROW,$(GENDER),CNN seed config (seed_cnn),cnn_seed_gender)
endif
SEED_256 := trainer=gpu data.input_size=256 model.input_log_ref=null paths.data_dir=$(REAL_HHT256)
SVM_RANDOM = ckpt=null data=muscletracker_$(1) model=cnn_small target=$(1) paths.data_dir=$(REAL_HHT)

eval-real: venv
	@mkdir -p $(dir $(EVAL_RUN)) && date +%s > $(EVAL_RUN).start
	$(BIN)/python make_hht.py input=$(REAL_RAW) output=$(REAL_HHT) $(HHT_REAL) $(HHT_LOG)
	for t in movement gender; do \
	  $(BIN)/python train.py -m "experiment=[muscletracker_$$t$(REAL_TUNED)]" $(FOLDS) paths.data_dir=$(REAL_HHT) \
	    hydra.sweep.dir=$(EVAL_RUN)/cnn_tuned_$$t $(JOB) && \
	  $(BIN)/python train.py -m "experiment=[muscletracker_$$t$(REAL_TUNED),final_model]" $(FINAL) \
	    paths.data_dir=$(REAL_HHT) hydra.sweep.dir=$(EVAL_RUN)/cnn_tuned_$${t}_final $(JOB) && \
	  $(BIN)/python fit_svm.py -m $(call SVM_RANDOM,$$t) $(FOLDS) hydra.sweep.dir=$(EVAL_RUN)/random_encoder_svm_$$t $(JOB) && \
	  $(BIN)/python fit_svm.py -m $(call SVM_RANDOM,$$t) data.split=none $(FINAL) \
	    hydra.sweep.dir=$(EVAL_RUN)/random_encoder_svm_$${t}_final $(JOB) || exit 1; \
	done
	for e in movement mio_movement; do \
	  $(BIN)/python train.py -m "experiment=[muscletracker_$$e,person_norm]" $(FOLDS) paths.data_dir=$(REAL_HHT) \
	    hydra.sweep.dir=$(EVAL_RUN)/cnn_calibrated_$$e $(JOB) && \
	  $(BIN)/python train.py -m "experiment=[muscletracker_$$e,person_norm,final_model]" $(FINAL) \
	    paths.data_dir=$(REAL_HHT) hydra.sweep.dir=$(EVAL_RUN)/cnn_calibrated_$${e}_final $(JOB) || exit 1; \
	done
	$(BIN)/python train.py -m "experiment=[muscletracker_mio_movement$(REAL_TUNED)]" $(FOLDS) paths.data_dir=$(REAL_HHT) \
		hydra.sweep.dir=$(EVAL_RUN)/cnn_tuned_mio_movement $(JOB)
	$(BIN)/python train.py -m "experiment=[muscletracker_mio_movement$(REAL_TUNED),final_model]" $(FINAL) \
		paths.data_dir=$(REAL_HHT) hydra.sweep.dir=$(EVAL_RUN)/cnn_tuned_mio_movement_final $(JOB)
	$(BIN)/python fit_svm.py -m ckpt=$(call CKPTS,cnn_tuned_gender,0 1 2 3 4) target=gender \
		hydra.sweep.dir=$(EVAL_RUN)/cnn_encoder_svm_gender $(JOB)
	$(BIN)/python fit_svm.py -m ckpt=$(call CKPTS,cnn_tuned_gender_final,$(FINAL_JOBS)) target=gender \
		hydra.sweep.dir=$(EVAL_RUN)/cnn_encoder_svm_gender_final $(JOB)
ifeq ($(REAL_GPU),1)
	$(BIN)/python make_hht.py input=$(REAL_RAW) output=$(REAL_HHT256) $(HHT_REAL) spectrum.size=256
	for t in movement gender; do \
	  $(BIN)/python train.py -m "experiment=[muscletracker_$$t,seed_cnn]" $(SEED_256) $(FOLDS) \
	    hydra.sweep.dir=$(EVAL_RUN)/cnn_seed_$$t $(JOB) && \
	  $(BIN)/python train.py -m "experiment=[muscletracker_$$t,seed_cnn,final_model]" $(SEED_256) $(FINAL) \
	    hydra.sweep.dir=$(EVAL_RUN)/cnn_seed_$${t}_final $(JOB) || exit 1; \
	done
endif
	@# evaluate.py reads the raw recordings with the settings make_hht converted $(REAL_HHT) with (its conversion.yaml)
	$(BIN)/python evaluate.py raw=$(REAL_RAW) hht_dir=$(REAL_HHT) person_norm.enabled=true hydra.run.dir=$(EVAL_RUN)/table 'hardware="$(HARDWARE)"' \
		experiments=[muscletracker_movement,muscletracker_mio_movement,muscletracker_gender] 'sweeps=[$(EVAL_SWEEPS)]' \
		'adaptation.compare=$(ADAPT_COMPARE)' 'adaptation.mixture.methods=[svm]'
	@# docs/results.md: the table as evaluate.py wrote it, and how long this whole target took (never edited by hand)
	@{ cat $(EVAL_RUN)/table/results.md; echo; \
	  echo "make eval-real took $$(( ($$(date +%s) - $$(cat $(EVAL_RUN).start)) / 60 )) min $$(( ($$(date +%s) - $$(cat $(EVAL_RUN).start)) % 60 )) s on $(CPU); run folder $(EVAL_RUN)."; \
	} > docs/.results.md.tmp && mv docs/.results.md.tmp docs/results.md && rm -f $(EVAL_RUN).start
	@tail -n 1 docs/results.md
