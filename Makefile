# Set-up pins torch to the CPU build first (constraints.txt), then installs everything that depends on it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.mote-rag-installed
RANX_STAMP := $(VENV)/.ranx-compiled
INTEGRATIONS := -e integrations/langchain-mote -e integrations/llama-index-embeddings-mote \
	-e integrations/llama-index-vector-stores-mote
# fastembed caps huggingface-hub < 2.0 (transformers 5 needs 2.x): installed without its resolver, with its
# run-time dependencies named here (the rest, onnxruntime, tokenizers, numpy, requests, tqdm, pillow, are pinned).
FASTEMBED := fastembed loguru mmh3 py-rust-stemmers

.PHONY: setup quickstart lint test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt integrations/*/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[ray,test]" $(INTEGRATIONS) -r requirements-dev.txt
	$(PIP) install -q -c constraints.txt --no-deps $(FASTEMBED)
	touch $(STAMP)

# ranx (the tests' reference metrics) compiles its numba kernels on first use, about 40 s on 2 cores, and caches them
# in site-packages: compiled once, before the first test run, for the one id width the tests give it
# (conftest.ranx_scores). Only the test targets need it, so `make quickstart` does not wait for it.
$(RANX_STAMP): $(STAMP)
	$(BIN)/python -c "import conftest; conftest.warm_ranx()"
	touch $(RANX_STAMP)

quickstart: setup
	$(BIN)/mote-rag quickstart

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Two tiers (README, Development): test-fast deselects the tests marked slow and never imports torch (conftest.py
# fails a test that does); test runs both tiers and is what CI runs.
test: setup lint $(RANX_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=20

test-fast: setup $(RANX_STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" --durations=10

clean:
	rm -rf $(VENV) mote-rag-quickstart
