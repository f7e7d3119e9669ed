# Set-up pins torch to the CPU build first (constraints.txt), then installs everything that depends on it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.mote-rag-installed
INTEGRATIONS := -e integrations/langchain-mote -e integrations/llama-index-embeddings-mote

.PHONY: setup quickstart test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt integrations/*/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[ray,test]" $(INTEGRATIONS) -r requirements-dev.txt
	touch $(STAMP)

quickstart: setup
	$(BIN)/mote-rag quickstart

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

clean:
	rm -rf $(VENV) mote-rag-quickstart
