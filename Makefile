# agent-reasoning — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
MODELS_DIR ?= models
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

$(VENV)/.installed: pyproject.toml client/pyproject.toml | $(BIN)/python
	@# CPU torch first: the wheel on this disk (pip find-links) or PyTorch's CPU index, never a CUDA build.
	$(BIN)/pip install -q --upgrade pip >/dev/null
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==$(TORCH_VERSION)" 2>/dev/null \
		|| $(BIN)/pip install -q torch --index-url $(TORCH_CPU_INDEX)
	$(BIN)/pip install -q -e ./client -e ".[dev,train]"
	@touch $@

install: $(VENV)/.installed ## create .venv and install the project (CPU torch)

serve: install ## start the service on $PORT (default 8080) with the models in models/
	PORT=$(PORT) MODELS_DIR=$(MODELS_DIR) $(BIN)/python -m reasoning_service

test: install ## run the test suite
	$(BIN)/python -m pytest -q

lint: install ## ruff
	$(BIN)/ruff check src client/src tests bench

bench: install ## run the benchmarks (model speed, engine, load); writes bench/results/*.json
	$(BIN)/python bench/model_speed.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/load.py

.PHONY: help install serve test lint bench
