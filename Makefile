# The two newcomer commands: `make demo` (main job) and `make test` (tests).
# Every install step lives here; torch is pinned to the CPU build (2.13.0) before the
# package is installed, so that the package's `torch>=2.3` requirement pulls nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gammastar-installed

.PHONY: install demo test test-all lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,root]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/gammastar run analysis/na60_like.yaml

test: install
	$(BIN)/python -m pytest -n 2

test-all: install
	$(BIN)/python -m pytest -n 2 -m ""

lint: install
	$(BIN)/ruff check src tests benchmarks analysis

clean:
	rm -rf $(VENV) runs
