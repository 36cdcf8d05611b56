# Every table and figure is a target. PROFILE=smoke (default) runs on CPU in minutes with data
# that needs no download; PROFILE=paper DATA_ROOT=/path runs the paper's settings.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= smoke
# real sample data for tests (tests skip, with a reason, where it is absent)
DATA_ROOT ?= $(abspath $(wildcard ../shared/data))
export SLR_DATA_ROOT ?= $(DATA_ROOT)

.PHONY: install test demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) -m core.demo

bench: install
	$(PY) benchmarks/bench_core.py

clean:
	rm -rf runs
