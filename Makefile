# The two newcomer commands: `make demo` (main job) and `make test` (tests).
# Every install step lives here; torch is pinned (2.13.0, PyPI's default wheel: on Linux it
# brings NVIDIA's CUDA libraries, unused on a CPU) before the package is installed, so that
# the package's `torch>=2.3` requirement pulls nothing else.
# `make demo` installs the package alone (what the demo needs); the test and benchmark targets
# add the `test` and `root` extras (the test tools and the real ROOT the round-trip tests and
# the selection benchmark compare with).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gammastar-installed
TEST_STAMP := $(VENV)/.gammastar-test-installed

.PHONY: install test-install bytecode demo test test-all test-generic-kernels lint typecheck \
	bench bench-quick validate validation-install docs docs-reference clean

# The numeric tests whose results go through torch kernels (flow training and sampling, the
# KL validation, the small flow on the mock): .ci/run runs them once more on torch's generic
# kernels (ATEN_CPU_CAPABILITY=default) so that a CPU dependence shows in CI.
NUMERIC_TESTS := tests/test_flow.py tests/test_flow_sampling.py tests/test_validate.py \
	tests/test_kl.py tests/test_flow_mock_quick.py

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

install: $(STAMP)

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,root]'
	touch $(TEST_STAMP)

test-install: $(TEST_STAMP)

# Byte-compile the package: an editable install is not, and where PYTHONDONTWRITEBYTECODE is
# set nothing ever is, so that every gammastar process (the CLI, the tests' child processes)
# would compile the sources again. compileall redoes only the changed files.
bytecode: install
	$(BIN)/python -m compileall -q src
	$(MAKE) --no-print-directory $(KERNEL_STAMP)

# numba compiles each kernel at its first call and caches it beside its module: compile them
# once here (python -m gammastar.kernels), not in the first run's stages or in each test
# worker. Redone when a kernel module changes (numba would also notice, at the first call).
KERNEL_STAMP := $(VENV)/.gammastar-kernels
KERNEL_SOURCES := src/gammastar/kernels.py src/gammastar/core/threads.py \
	src/gammastar/flow/_training_kernels.py src/gammastar/flow/_sampling_kernels.py \
	src/gammastar/yields/_extrapolation_kernel.py src/gammastar/yields/_fiducial_bound.py \
	src/gammastar/corrections/pair_acceptance/tabulation.py src/gammastar/events/_hepmc_ascii.py

$(KERNEL_STAMP): $(STAMP) $(KERNEL_SOURCES)
	$(BIN)/python -m gammastar.kernels
	touch $(KERNEL_STAMP)

# validation/: the studies of the method against the mock's truth (not in the wheel). Their
# helper package gammastar_validation is installed editable into the same environment.
VALIDATION_STAMP := $(VENV)/.gammastar-validation-installed
VALIDATE_WORK ?= runs/validate
VPY := OMP_NUM_THREADS=1 $(BIN)/python

$(VALIDATION_STAMP): $(TEST_STAMP) validation/pyproject.toml
	$(BIN)/python -m pip install --quiet --no-deps -e ./validation
	touch $(VALIDATION_STAMP)

validation-install: $(VALIDATION_STAMP)

demo: bytecode
	$(BIN)/gammastar run analysis/na60_like_both.yaml

test: bytecode test-install
	$(BIN)/python -m pytest -n 2

test-generic-kernels: bytecode test-install
	ATEN_CPU_CAPABILITY=default $(BIN)/python -c "import torch; c = torch.backends.cpu.get_cpu_capability(); assert c == 'DEFAULT', c"
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -n 2 $(NUMERIC_TESTS)

test-all: bytecode test-install
	$(BIN)/python -m pytest -n 2 -m ""

lint: test-install
	$(BIN)/ruff check src tests benchmarks analysis validation

# mypy on src/gammastar with pyproject.toml's [tool.mypy]: every module checked, the public API
# and the stages with the strict flags (cache: .mypy_cache).
typecheck: test-install
	$(BIN)/mypy

# The tests of the study code, then every kept study reduced (few sources, masses, samples,
# realisations and training epochs; the coverage takes the closure run's flow, whose
# coverage_flows.py the tests cover): that each runs and prints its figures, not their full
# statistics (the full commands and their results: validation/README.md).
validate: $(VALIDATION_STAMP) bytecode
	rm -rf $(VALIDATE_WORK) && mkdir -p $(VALIDATE_WORK)
	$(BIN)/python -m pytest -n 2 --dist loadfile validation/tests validation/gammastar_validation
	$(VPY) validation/scripts/corruption.py --trials 1 --compressions zstd
	$(VPY) validation/scripts/acceptance_shapes.py --samples 20000
	$(VPY) validation/scripts/like_sign_closure.py --events 300000 \
		--workdir $(VALIDATE_WORK)/like_sign
	$(VPY) validation/scripts/polarisation_closure.py --events 300000 --truth-sources 500000
	$(VPY) validation/scripts/reach_closure.py --workdir $(VALIDATE_WORK)/run --events 300000 \
		--truth-sources 1000000 --samples 10000 --masses 0.3 0.6 --ctaus 1 100
	$(VPY) validation/scripts/na62_decomposition.py --run $(VALIDATE_WORK)/run --masses 6 \
		--truth-sources 500000
	$(VPY) validation/scripts/generator_template.py --backend pythia --sources 30000 \
		--out $(VALIDATE_WORK)/template_pythia.root
	$(VPY) validation/scripts/forward_closure.py --events 300000 --workdir $(VALIDATE_WORK)/forward \
		--facilities na62_dump charm --masses 0.05 0.45 --samples 5000 --truth-sources 100000 \
		--yield-sources 200000 --template $(VALIDATE_WORK)/template_pythia.root
	$(VPY) validation/scripts/extrapolation_xf_profile.py --config analysis/na60_like_both.yaml \
		--run $(VALIDATE_WORK)/forward --powers 0 2 4
	$(VPY) validation/scripts/flow_closure.py --events 300000 --realisations 2 \
		--mass-points 4 --variant '{"epochs": 4, "points_per_epoch": 20000}' \
		--workdir $(VALIDATE_WORK)/flow_closure
	$(VPY) validation/scripts/nsig_coverage.py --events 300000 --realisations 2 --arms stat \
		--flow $(VALIDATE_WORK)/run/flow --masses 0.6 --ctaus 1 --truth-sources 500000 \
		--response-sources 500000 --samples 5000 --workdir $(VALIDATE_WORK)/coverage
	$(VPY) validation/scripts/reference_sample.py --events 300000 --seeds 5 \
		--workdir $(VALIDATE_WORK)/reference_sample
	$(VPY) validation/scripts/real_data_closure.py --out $(VALIDATE_WORK)/real_data.json

# The documentation site (mkdocs.yml) into site/: `--strict` fails on a broken link or anchor,
# a page missing from the nav or an unreadable API docstring. Nothing is fetched while building.
DOCS_STAMP := $(VENV)/.gammastar-docs-installed

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

# The demo tutorial's and README.md's summary lines and figures (docs/images/demo-*.png) come
# from a run of the demo (docs/_generate.py --demo-run): the demo reruns, every stage, when its
# run is missing or older than the package's sources, the demo config or the data files it reads.
DEMO_CONFIG := analysis/na60_like_both.yaml
DEMO_RUN := runs/na60_like_both
DEMO_SOURCES := $(DEMO_CONFIG) $(shell find src/gammastar -name '*.py' -o -name '*.json') \
	$(wildcard data/*.root)

$(DEMO_RUN)/report.html: $(DEMO_SOURCES) | bytecode
	$(BIN)/gammastar run $(DEMO_CONFIG) --force all

docs: $(DOCS_STAMP) $(DEMO_RUN)/report.html
	$(BIN)/python -P docs/_generate.py --demo-run $(DEMO_RUN)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

# Rewrite the reference pages generated from the code (config keys, CLI, run directory);
# tests/test_docs.py fails while they are out of date. -P: docs/ stays off sys.path.
docs-reference: install
	$(BIN)/python -P docs/_generate.py

# The performance benchmarks at the settings of docs/validation/performance.md (long: tens of
# minutes); bench-quick runs each at its smallest settings (that it runs, not its figures).
bench: test-install
	$(VPY) benchmarks/generate.py
	$(VPY) benchmarks/bench_select.py
	$(VPY) benchmarks/events.py
	$(BIN)/python benchmarks/flow.py
	$(BIN)/python benchmarks/ensemble.py
	$(VPY) benchmarks/reach.py
	$(VPY) benchmarks/yields.py
	$(BIN)/python benchmarks/chain.py

bench-quick: test-install
	$(VPY) benchmarks/generate.py --sizes 200000 --reference-sizes 200000 400000
	$(VPY) benchmarks/bench_select.py --events 200000 --sources 200000 --repeat 1 \
		--workdir runs/bench_select
	$(VPY) benchmarks/events.py --n 20000 --loop 1000 --repeat 1
	$(BIN)/python benchmarks/flow.py --pairs 20000 --epochs 1 --paper-epochs 2 \
		--default-epochs 2 --sample-n 100000
	$(BIN)/python benchmarks/ensemble.py --members 2 --pairs 5000 --epochs 2
	$(VPY) benchmarks/reach.py --subset 5 --boundary-masses 1 --rounds 1 --toy-points 0 \
		--samples 2000
	$(VPY) benchmarks/yields.py --events 300000 --repeat 1
	$(BIN)/python benchmarks/chain.py --quick

clean:
	rm -rf $(VENV) runs
