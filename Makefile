# One entry point per stage. Each target creates .venv when missing and installs the
# extra its stage needs (a stamp file per extra avoids reinstalling on every call).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN    ?= cifar10
PRESET ?=
# Where the CIFAR-10 class-folder copy is (train/ and test/): ../shared beside the checkout
# here; anyone else says where theirs is, e.g. make cifar10-continue DATASETS=~/data.
DATASETS ?= ../shared/datasets
SHARED_CIFAR10 := $(DATASETS)/cifar10/train
SHARED_CIFAR10_TEST := $(DATASETS)/cifar10/test
# make train uses the shared CIFAR-10 copy when it is there (no download needed). Without
# PRESET, cgan-train picks the recipe for the dataset's size itself (and says which).
DATA   ?= $(if $(filter-out cifar10%,$(PRESET)),,$(wildcard $(SHARED_CIFAR10)))
ARGS   ?=
MODEL  ?= models/$(RUN).onnx
# make cifar10-models / cifar10-baseline: both recipes get the shipped model's CPU budget
# (7.89 CPU-hours, its card), counted in the checkpoint, so cores and resumes do not matter.
CPU_MINUTES ?= 474
MINUTES ?= 90
RESULTS := docs/results
ONE_CORE := env TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
CIFAR10_SNGAN := --preset cifar10 --data $(SHARED_CIFAR10) --seed 0 --quiet
CIFAR10_DCGAN := --arch dcgan --data $(SHARED_CIFAR10) --batch-size 64 --ema-decay 0.999 \
  --seed 0 --quiet --g-channels 64 --d-channels 64 --g-lr 2e-4 --d-lr 2e-4 \
  --beta1 0.5 --beta2 0.999 --checkpoint-every 2000
# The shipped model's training accumulates across sessions: its full state is in the repo,
# in longruns/ (state, not code; longruns/README.md).
# Since 2026-12-06 it is the projected-discriminator branch of longruns/cifar10
# (from that run's step 39,250; docs/results/longrun-branches.md).
LONGRUN := longruns/cifar10-projected
# make recipe-study: CPU-minutes of training per variant (a larger value extends them all)
STUDY_MINUTES ?= 20
# make own-classes-study: CPU-minutes per variant on three Imagenette classes
OWN_MINUTES ?=
# make scrape / make dataset
LABELS ?= cat dog horse
LIMIT  ?= 500
OUT    ?= data/mine
SIZE   ?= 64
MIN_PER_CLASS ?= 50
VAL_FRACTION ?= 0.2

.PHONY: help train demo pipeline cifar10-models cifar10-baseline cifar10-baseline-eval cifar10-continue cifar10-ship recipe-study own-classes-study test test-fast lint bench export evaluate judge dashboard scrape dataset clean

help:
	@echo "make demo       generated/demo.png from the shipped CIFAR-10 model (base install, seconds)"
	@echo "make pipeline   train the smoke preset (a minute or two), export it, generate generated/pipeline.png"
	@echo "make train      train into runs/RUN (resumes when runs/RUN exists); DATA=folder, PRESET="
	@echo "                (default: the recipe for the dataset's size, chosen by cgan-train)"
	@echo "make cifar10-models  retrain the shipped recipe from scratch and its dcgan baseline, one"
	@echo "                core each, CPU_MINUTES=$(CPU_MINUTES) of CPU time each; evaluate both, ship if better"
	@echo "make cifar10-baseline  the dcgan baseline alone at CPU_MINUTES (every core, resumable)"
	@echo "make cifar10-continue  resume the shipped model's long run ($(LONGRUN)) on every core"
	@echo "                for MINUTES=$(MINUTES), then stop it with a checkpoint (commit the folder)"
	@echo "make cifar10-ship  export and evaluate the long run; it replaces the shipped model only"
	@echo "                when its figures are better"
	@echo "make recipe-study  CIFAR-10 recipes at equal CPU time (STUDY_MINUTES=$(STUDY_MINUTES) each,"
	@echo "                two at a time, resumable) -> docs/results/recipes.{md,png}"
	@echo "make own-classes-study  three Imagenette classes, 400 photos each, 64x64 and 32x32:"
	@echo "                recipes at 60 / 30 CPU-minutes each (OWN_MINUTES=M for M) -> docs/results/own-classes.md"
	@echo "make scrape     gather LABELS=\"$(LABELS)\" LIMIT=$(LIMIT) images per label into OUT=$(OUT)"
	@echo "make dataset    build OUT-SIZE (centre crop, resize) from OUT for make train DATA=..., and"
	@echo "                OUT-val-SIZE, the held-out VAL_FRACTION=$(VAL_FRACTION) for cgan-eval --reference"
	@echo "make dashboard  the Streamlit app (generate, explore, inspect, training runs)"
	@echo "make test       run the test suite (what CI runs)"
	@echo "make test-fast  the suite without its slow tests (trainings, browser, workers, wheel)"
	@echo "make lint       ruff"
	@echo "make export     export runs/RUN to models/RUN.onnx with its model card"
	@echo "make judge      train the CIFAR-10 judge network used by make evaluate"
	@echo "make evaluate   MODEL=models/x.onnx: judge accuracy, Frechet distance, precision/recall"
	@echo "make bench      benchmarks (training speed and loop overhead, inference speed and cold start)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The base install (inference only: numpy, pillow, onnxruntime).
$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[$*]"
	@touch $@

train: $(VENV)/.installed-train
	@if [ -f runs/$(RUN)/config.toml ]; then \
	  set -x; $(BIN)/cgan-train --run-dir runs/$(RUN) --resume $(ARGS); \
	else \
	  set -x; $(BIN)/cgan-train --run-dir runs/$(RUN) $(if $(PRESET),--preset $(PRESET)) $(if $(DATA),--data $(DATA)) $(ARGS); \
	fi

demo: $(VENV)/.installed-base
	$(BIN)/cgan-infer --label all --seeds 0-7 --grid --scale 2 -o generated/demo.png

pipeline: $(VENV)/.installed-export
	rm -rf runs/pipeline
	$(BIN)/cgan-train --preset smoke --run-dir runs/pipeline
	$(BIN)/cgan-export runs/pipeline -o models/pipeline.onnx
	$(BIN)/cgan-infer --model models/pipeline.onnx --label all --seeds 0-7 --grid --scale 2 \
	  -o generated/pipeline.png

# A run that exists is resumed: a larger CPU_MINUTES extends it.
train_or_resume = if [ -f runs/$(1)/config.toml ]; then $(BIN)/cgan-train --run-dir runs/$(1) \
  --resume --quiet --cpu-minutes $(CPU_MINUTES); else $(BIN)/cgan-train --run-dir runs/$(1) \
  $(2) --cpu-minutes $(CPU_MINUTES); fi

# Both runs stop at CPU_MINUTES with a checkpoint. The retrained model goes through the
# same ship rule as the long run (it replaces the shipped one only when it measures better).
cifar10-models: $(VENV)/.installed-export
	($(ONE_CORE) taskset -c 0 sh -c '$(call train_or_resume,cifar10-sngan,$(CIFAR10_SNGAN))') & sngan=$$!; \
	($(ONE_CORE) taskset -c 1 sh -c '$(call train_or_resume,cifar10-dcgan,$(CIFAR10_DCGAN))') & dcgan=$$!; \
	wait $$sngan && wait $$dcgan
	$(BIN)/cgan-export runs/cifar10-sngan -o models/cifar10-sngan.onnx
	$(BIN)/cgan-eval models/cifar10-sngan.onnx --embed --reference $(SHARED_CIFAR10_TEST) -o $(RESULTS)/cifar10-sngan.eval.json
	$(MAKE) cifar10-baseline-eval
	$(BIN)/cgan-eval --real $(SHARED_CIFAR10) --reference $(SHARED_CIFAR10_TEST) -o $(RESULTS)/cifar10-real.eval.json
	$(BIN)/python -m cgan.evaluation.ship models/cifar10-sngan.onnx

cifar10-baseline: $(VENV)/.installed-export
	$(call train_or_resume,cifar10-dcgan,$(CIFAR10_DCGAN))
	$(MAKE) cifar10-baseline-eval

cifar10-baseline-eval: $(VENV)/.installed-export
	$(BIN)/cgan-export runs/cifar10-dcgan -o models/cifar10-dcgan.onnx
	$(BIN)/cgan-eval models/cifar10-dcgan.onnx --embed --reference $(SHARED_CIFAR10_TEST) -o $(RESULTS)/cifar10-dcgan.eval.json
	cp models/cifar10-dcgan.md models/cifar10-dcgan.png $(RESULTS)/

# timeout sends SIGTERM: the run saves a checkpoint and exits 143; timeout then exits 124.
# The run measures itself every 1,000 steps against the test split (docs/results/longrun.md).
cifar10-continue: $(VENV)/.installed-train
	timeout -s TERM $(MINUTES)m $(BIN)/cgan-train --run-dir $(LONGRUN) --resume --quiet \
	  --data $(SHARED_CIFAR10) --eval-every 1000 --eval-reference $(SHARED_CIFAR10_TEST) --keep-best fd; \
	  rc=$$?; [ $$rc = 0 ] || [ $$rc = 124 ] || exit $$rc

cifar10-ship: $(VENV)/.installed-export
	$(BIN)/cgan-export $(LONGRUN) -o models/cifar10-candidate.onnx
	$(BIN)/cgan-eval models/cifar10-candidate.onnx --embed --reference $(SHARED_CIFAR10_TEST) \
	  -o $(RESULTS)/cifar10-candidate.eval.json
	$(BIN)/python -m cgan.evaluation.ship models/cifar10-candidate.onnx

recipe-study: $(VENV)/.installed-export
	$(BIN)/python benchmarks/recipe_study.py all --minutes $(STUDY_MINUTES)

own-classes-study: $(VENV)/.installed-export $(VENV)/.installed-scrape
	$(BIN)/python benchmarks/own_classes.py all $(if $(OWN_MINUTES),--minutes $(OWN_MINUTES))

test: $(VENV)/.installed-all
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.installed-all
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

bench: $(VENV)/.installed-export $(VENV)/.installed-scrape
	$(BIN)/python benchmarks/train_bench.py
	$(BIN)/python benchmarks/infer_bench.py
	$(BIN)/python benchmarks/scrape_bench.py
	$(BIN)/python benchmarks/streaming.py
	$(BIN)/python benchmarks/two_shard_crawl.py

export: $(VENV)/.installed-export
	$(BIN)/cgan-export runs/$(RUN) -o models/$(RUN).onnx $(ARGS)

# The Training page lists runs/ and a study's variants one folder down: the long run joins
# them as runs/longrun/cifar10 through a link.
dashboard: $(VENV)/.installed-dashboard
	@mkdir -p runs; [ -e runs/longrun ] || ln -s ../$(patsubst %/,%,$(dir $(LONGRUN))) runs/longrun
	$(BIN)/cgan-dashboard $(ARGS)

judge: $(VENV)/.installed-train
	$(BIN)/python -m cgan.evaluation.judge_train $(ARGS)

evaluate: $(VENV)/.installed-export
	$(BIN)/cgan-eval $(MODEL) --embed $(ARGS)

scrape: $(VENV)/.installed-scrape
	$(BIN)/cgan-scrape --labels $(LABELS) --limit $(LIMIT) --out $(OUT) $(ARGS)

# Two disjoint sides of one crawl: OUT-SIZE to train on, OUT-val-SIZE for cgan-eval's reference.
dataset: $(VENV)/.installed-scrape
	$(BIN)/cgan-scrape build --src $(OUT) --out $(OUT)-$(SIZE) --size $(SIZE) \
	  --min-per-class $(MIN_PER_CLASS) --split train --val-fraction $(VAL_FRACTION)
	$(BIN)/cgan-scrape build --src $(OUT) --out $(OUT)-val-$(SIZE) --size $(SIZE) \
	  --split val --val-fraction $(VAL_FRACTION)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
