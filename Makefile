# payguard — the two commands that matter: `make demo` (run payguard on a cluster) and `make test`.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLUSTER_DIR ?= $(CURDIR)/.localcluster
LOCALCLUSTER := $(BIN)/python hack/localcluster.py --state-dir $(CLUSTER_DIR)
PYTEST_ARGS ?=

include hack/versions.env

.PHONY: help
help: ## Show the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/\$$\$$/$$/g' | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "payguard needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(BIN)/.installed ## Create .venv/ with payguard and the dev tools

.PHONY: binaries
binaries: ## Build (or reuse cached) etcd, kube-apiserver, kube-controller-manager and the cert-manager controller
	bash hack/build-binaries.sh
	bash hack/build-cert-manager.sh

.PHONY: helm
helm: ## Build (or reuse cached) helm from the Go module proxy
	bash hack/build-helm.sh

.PHONY: chart-crds
chart-crds: ## Copy crds/ into the chart and the package (tests fail when they differ)
	cp crds/*.yaml charts/payguard/crds/
	cp crds/paymentservice.yaml operator/payguard/tools/paymentservice-crd.yaml

.PHONY: cluster-up
cluster-up: venv ## Start the local control plane (idempotent); last line is KUBECONFIG=...
	$(LOCALCLUSTER) up

.PHONY: cluster-down
cluster-down: venv ## Stop the local control plane and remove its state
	$(LOCALCLUSTER) down

.PHONY: run
run: venv ## Run payguard against $$KUBECONFIG (default: the local control plane)
	@if [ -z "$${KUBECONFIG:-}" ]; then export KUBECONFIG=$$($(LOCALCLUSTER) up | tail -n 1 | cut -d= -f2-); fi; \
	exec $(BIN)/payguard run

.PHONY: demo
demo: venv ## Start a cluster (or use $$KUBECONFIG), run payguard, apply an example, show it
	CLUSTER_DIR=$(CLUSTER_DIR) bash hack/demo.sh

.PHONY: lint
lint: venv ## ruff, mypy --strict and the import-layer contracts
	$(BIN)/ruff check operator hack tests
	$(BIN)/ruff format --check operator hack tests
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: test
test: venv binaries helm lint ## Everything CI runs: lint, type checks, unit and integration tests on a real API server
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests: that is a failure" >&2; fi; \
	exit $$status

.PHONY: test-unit
test-unit: venv ## Unit tests only (no cluster)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

BENCH_TOOLS := matplotlib==3.11.2 py-spy==0.4.3

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install --quiet $(BENCH_TOOLS)
	touch $@

.PHONY: bench
bench: venv binaries helm $(BIN)/.bench-installed ## Benchmarks at 1, 100, 500 and then 2,000 PaymentServices (~70 min, estimated); results in bench/results/
	$(BIN)/python -m bench --mode full

.PHONY: bench-quick
bench-quick: venv binaries helm $(BIN)/.bench-installed ## Quick benchmarks at 1 and 20 PaymentServices (~3 min); results in bench/results/quick/
	$(BIN)/python -m bench --mode quick

.PHONY: kind-up
kind-up: venv ## Create a kind cluster from kind-config.yaml with the Istio, cert-manager and payguard CRDs (needs Docker)
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "kind-up: no Docker engine here; use make cluster-up" >&2; exit 1; }
	kind create cluster --name payguard --config kind-config.yaml
	KUBECONFIG=$$(mktemp) && kind get kubeconfig --name payguard > $$KUBECONFIG && \
	  KUBECONFIG=$$KUBECONFIG $(BIN)/python hack/localcluster.py install-crds

.PHONY: kind-e2e
kind-e2e: venv ## kind + Istio + cert-manager, build and load the image, install the chart, run tests/e2e (needs Docker)
	bash hack/kind-e2e.sh

.PHONY: kind-down
kind-down: ## Delete the kind cluster
	kind delete cluster --name payguard

.PHONY: clean
clean: cluster-down ## Remove the virtualenv and caches (keeps the cached Kubernetes binaries)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
