# One entry point per stage. Each target creates .venv when missing and installs the
# extra its stage needs (a stamp file per extra avoids reinstalling on every call).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN    ?= cifar10
PRESET ?= cifar10
SHARED_CIFAR10 := ../shared/datasets/cifar10/train
# make train uses the shared CIFAR-10 copy when it is there (no download needed).
DATA   ?= $(if $(filter cifar10,$(PRESET)),$(wildcard $(SHARED_CIFAR10)),)
ARGS   ?=
MODEL  ?= models/$(RUN).onnx
# make scrape / make dataset
LABELS ?= cat dog horse
LIMIT  ?= 500
OUT    ?= data/mine
SIZE   ?= 64
MIN_PER_CLASS ?= 50

.PHONY: help train demo test lint bench export evaluate judge dashboard scrape dataset clean

help:
	@echo "make demo       train the smoke preset (a minute or two), export it, generate generated/demo.png"
	@echo "make train      train PRESET=$(PRESET) into runs/RUN (resumes when runs/RUN exists); DATA=folder"
	@echo "make scrape     gather LABELS=\"$(LABELS)\" LIMIT=$(LIMIT) images per label into OUT=$(OUT)"
	@echo "make dataset    build OUT-SIZE (centre crop, resize) from OUT for make train DATA=..."
	@echo "make dashboard  the Streamlit app (generate, explore, inspect, training runs)"
	@echo "make test       run the test suite"
	@echo "make lint       ruff"
	@echo "make export     export runs/RUN to models/RUN.onnx with its model card"
	@echo "make judge      train the CIFAR-10 judge network used by make evaluate"
	@echo "make evaluate   MODEL=models/x.onnx: judge accuracy, Frechet distance, precision/recall"
	@echo "make bench      benchmarks (training speed and loop overhead, inference speed and cold start)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[$*]"
	@touch $@

train: $(VENV)/.installed-train
	@if [ -f runs/$(RUN)/config.toml ]; then \
	  set -x; $(BIN)/cgan-train --run-dir runs/$(RUN) --resume $(ARGS); \
	else \
	  set -x; $(BIN)/cgan-train --run-dir runs/$(RUN) --preset $(PRESET) $(if $(DATA),--data $(DATA)) $(ARGS); \
	fi

demo: $(VENV)/.installed-export
	rm -rf runs/demo
	$(BIN)/cgan-train --preset smoke --run-dir runs/demo
	$(BIN)/cgan-export runs/demo -o models/demo.onnx
	$(BIN)/cgan-infer --model models/demo.onnx --label all --seeds 0-7 --grid --scale 2 -o generated/demo.png

test: $(VENV)/.installed-all
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-export $(VENV)/.installed-scrape
	$(BIN)/python benchmarks/train_bench.py
	$(BIN)/python benchmarks/infer_bench.py
	$(BIN)/python benchmarks/scrape_bench.py

export: $(VENV)/.installed-export
	$(BIN)/cgan-export runs/$(RUN) -o models/$(RUN).onnx $(ARGS)

dashboard: $(VENV)/.installed-dashboard
	$(BIN)/streamlit run dashboard/app.py --server.headless true --browser.gatherUsageStats false --client.toolbarMode viewer $(ARGS)

judge: $(VENV)/.installed-train
	$(BIN)/python -m training.evaluation.judge_train $(ARGS)

evaluate: $(VENV)/.installed-export
	$(BIN)/cgan-eval $(MODEL) --embed $(ARGS)

scrape: $(VENV)/.installed-scrape
	$(BIN)/cgan-scrape --labels $(LABELS) --limit $(LIMIT) --out $(OUT) $(ARGS)

dataset: $(VENV)/.installed-scrape
	$(BIN)/cgan-scrape build --src $(OUT) --out $(OUT)-$(SIZE) --size $(SIZE) --min-per-class $(MIN_PER_CLASS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
