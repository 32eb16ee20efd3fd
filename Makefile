# The two newcomer commands: `make demo` (main job) and `make test` (tests).
# Every install step lives here; torch is pinned to the CPU build (2.13.0) before the
# package is installed, so that the package's `torch>=2.3` requirement pulls nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gammastar-installed

.PHONY: install demo test test-all test-generic-kernels lint bench clean

# The numeric tests whose results go through torch kernels (flow training and sampling, the
# KL validation, the small flow on the mock): .ci/run runs them once more on torch's generic
# kernels (ATEN_CPU_CAPABILITY=default) so that a CPU dependence shows in CI.
NUMERIC_TESTS := tests/test_flow.py tests/test_flow_sampling.py tests/test_validate.py \
	tests/test_kl.py tests/test_flow_mock_quick.py

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,root]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/gammastar run analysis/na60_like_both.yaml

test: install
	$(BIN)/python -m pytest -n 2

test-generic-kernels: install
	ATEN_CPU_CAPABILITY=default $(BIN)/python -c "import torch; c = torch.backends.cpu.get_cpu_capability(); assert c == 'DEFAULT', c"
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -n 2 $(NUMERIC_TESTS)

test-all: install
	$(BIN)/python -m pytest -n 2 -m ""

lint: install
	$(BIN)/ruff check src tests benchmarks analysis

clean:
	rm -rf $(VENV) runs
