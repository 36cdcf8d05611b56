# Every table and figure is a target. PROFILE=smoke (default) runs on CPU in minutes with data
# that needs no download; PROFILE=paper DATA_ROOT=/path runs the paper's settings.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
export PROFILE ?= smoke
# real sample data for tests (tests skip, with a reason, where it is absent)
SAMPLE_DATA ?= $(abspath $(wildcard ../shared/data))
export SLR_DATA_ROOT ?= $(SAMPLE_DATA)
RUNS ?= runs/$(PROFILE)
# DEVICE=cpu|cuda|cuda:1 for every task's runs (default: each config's `device`, auto: a GPU when visible)
DEVICE ?=
DEVICE_ARG = $(if $(DEVICE),--device $(DEVICE))
FIGURES ?= $(RUNS)/figures

# Every target runs in the project's virtual environment, built before anything else runs
# (make remakes an included makefile first). Give PY=/path/to/python to use another one.
INSTALLED := $(VENV)/.installed.mk
ifeq ($(origin PY),file)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
-include $(INSTALLED)
endif
endif

$(INSTALLED): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	echo "# $(VENV) holds requirements.txt and requirements-dev.txt" > $@

# each task folder adds its targets and appends to DEMO_TARGETS in its targets.mk
DEMO_TARGETS :=
-include classification/targets.mk detection_yolo/targets.mk pointpillars_kitti/targets.mk lane_tusimple/targets.mk

.PHONY: install test demo core-demo bench claims fidelity-figures mutation paper-check clean

install: $(INSTALLED)

test: install
	$(PY) -m pytest -q tests

# the README's demo: every task's smoke tables (the core example when no task adds one)
demo: install $(if $(DEMO_TARGETS),$(DEMO_TARGETS),core-demo)

core-demo: install
	$(PY) -m examples.digits_demo --out $(RUNS)/core_demo

# the paper's claims judged on results files (figures/claims.py): RUNS=folder, default the fidelity study
CLAIMS_RUNS ?= $(if $(filter command line,$(origin RUNS)),$(RUNS),docs/fidelity/results)
claims: install
	$(PY) -m figures.claims --runs $(CLAIMS_RUNS)

# the fidelity study's Figure 1 curve and Figure 2 violations for the four methods (docs/fidelity/)
fidelity-figures: install
	$(PY) -m figures.fig_fidelity --runs $(CLAIMS_RUNS) --out docs/fidelity

bench: install
	$(PY) benchmarks/bench_core.py

# the GPU check (benchmarks/gpu_check.sh): every task's paper-size model on a CUDA GPU with AMP, plain and with
# SLR, bench_core on the GPU, a 2-process DDP run, each entry point once; docs/gpu_check.md in under 10 minutes.
# DEVICE=cpu: the first iterations on the CPU; PROFILE=smoke (given here) the smoke models; ITERS=, CASES=, ...
.PHONY: gpu-check
gpu-check: install
	PY=$(PY) DEVICE=$(DEVICE) PROFILE=$(if $(filter command line,$(origin PROFILE)),$(PROFILE),paper) bash benchmarks/gpu_check.sh

# mutation testing of core's math (slr, admm, pruner, projections, masks, sparsity) against the
# tests that reach each mutated function; prints the score and the survivors (a benchmark of the
# tests, about 20 minutes on 2 cores; not part of make test)
mutation: install
	$(PY) benchmarks/mutation/run.py

# every paper-profile experiment of Tables 1-8 on the CPU at its real architecture, input size,
# optimizer, sparsity config and batch (where it fits 24 GiB; PAPER_CHECK_ARGS=--largest-batch runs the
# largest that fits where it does not): two iterations of every stage on the sample data (SLR_DATA_ROOT),
# the results files checked (rates, stages, keys); one line per experiment, PASS/FAIL, exit code 1
# on a failure; the table goes to docs/paper_check.md (benchmarks/paper_check.py; PAPER_CHECK_ARGS=--only table1/r18_cifar)
PAPER_CHECK_DOC ?= docs/paper_check.md
PAPER_CHECK_ARGS ?=
paper-check: install
	$(PY) benchmarks/paper_check.py --data-root "$(SLR_DATA_ROOT)" --doc $(PAPER_CHECK_DOC) $(PAPER_CHECK_ARGS)

clean:
	rm -rf runs
