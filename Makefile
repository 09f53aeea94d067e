# facestream developer commands. Every target installs what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FS := $(BIN)/facestream
STAMP := $(VENV)/.installed
SERVICES := scripts/services/services.sh
STACK_PID := var/stack.pid
STACK_LOG := var/log/stack.log
PYTEST_ARGS ?=
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help setup services services-down migrate topics run up down test test-unit test-js lint format clean \
	prometheus prometheus-down \
	docker-build docker-up docker-down docker-config

help:
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## Create .venv with the project, its tools and the default model pack
# engine/packs.py: a changed default pack (a new detector file) is pulled again.
$(STAMP): pyproject.toml engine/packs.py streams/_packed_consumer.c index/_topk_heap.c
	# The rebuild's native reader (streams/_packed_consumer.c) is compiled against librdkafka and
	# Python's headers (Debian's python3.11-dev where the interpreter is Debian's); the flat
	# index's heaps (index/_topk_heap.c) against Python's headers alone.
	@missing=""; \
	test -f /usr/include/librdkafka/rdkafka.h || missing="$$missing librdkafka-dev"; \
	command -v gcc >/dev/null || missing="$$missing gcc libc6-dev"; \
	$(PYTHON) -c 'import pathlib, sys, sysconfig; sys.exit(not pathlib.Path(sysconfig.get_paths()["include"], "Python.h").exists())' \
		|| missing="$$missing python3.11-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$(AS_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,backends]'
	# insightface 2.1 requires the GUI build opencv-python; we run opencv-python-headless,
	# so insightface goes in without its requirements (pinned in pyproject.toml instead).
	$(BIN)/pip install -q --no-deps insightface==2.1
	$(FS) models pull default
	touch $@

services: setup ## Start Kafka and PostgreSQL on loopback (installs them if missing)
	$(SERVICES) install
	$(SERVICES) up >/dev/null

services-down: ## Stop the services that `make services` started
	$(SERVICES) down

migrate: services ## Apply the database migrations
	$(FS) db migrate

topics: services ## Create the Kafka topics
	$(FS) topics create

run: services ## Start the whole stack in the foreground (Ctrl-C stops it)
	$(FS) stack run

up: services ## Start the whole stack in the background; returns once /health is ready
	@mkdir -p $(dir $(STACK_LOG))
	@if [ -f $(STACK_PID) ] && kill -0 $$(cat $(STACK_PID)) 2>/dev/null; then \
		echo "stack already running (pid $$(cat $(STACK_PID)))"; \
	else \
		nohup $(FS) stack run > $(STACK_LOG) 2>&1 & echo $$! > $(STACK_PID); \
	fi
	@$(FS) stack wait --timeout 300 >/dev/null || { tail -n 40 $(STACK_LOG); exit 1; }
	@grep -m1 "development API key" $(STACK_LOG) || true
	@echo "facestream is up on http://$${FACESTREAM_API_HOST:-127.0.0.1}:$${FACESTREAM_API_PORT:-8000} (logs: $(STACK_LOG))"

down: ## Stop what `make up` started (the stack, then the services)
	@if [ -f $(STACK_PID) ]; then \
		pid=$$(cat $(STACK_PID)); \
		kill $$pid 2>/dev/null && while kill -0 $$pid 2>/dev/null; do sleep 0.5; done; \
		rm -f $(STACK_PID); \
	fi
	$(SERVICES) down

test: setup ## Run the whole suite (starts Kafka and PostgreSQL if they are not running)
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: setup ## Hermetic tests only: no broker, database or models
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: setup ## ruff, mypy and the layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup ## Format and fix imports (ruff stands in for black and isort)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-js: ## The Node client's tests (the live part needs FACESTREAM_API_URL and FACESTREAM_API_KEY)
	node --test clients/js

prometheus: ## Prometheus (Debian package) scraping every process of the local stack, alert rules loaded (:19090)
	scripts/services/prometheus.sh start

prometheus-down: ## Stop that Prometheus
	scripts/services/prometheus.sh stop

docker-build: ## Build the CPU image (facestream:latest), and the GPU image where its CUDA base exists
	scripts/containers/build.sh

docker-up: docker-build ## Build, then start the compose stack (Kafka, PostgreSQL, API, workers, replicas)
	scripts/containers/compose.sh up -d

docker-down: ## Stop the compose stack
	scripts/containers/compose.sh down
	scripts/containers/compose.sh helpers-down

docker-config: setup ## Validate docker-compose.yml
	scripts/containers/compose.sh config --quiet

clean: ## Remove local state (models, index snapshots, service data)
	rm -rf var .cache
