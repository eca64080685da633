# The front door: every target sets itself up from nothing (a fresh clone, no .venv).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check format lint types bench clean

$(STAMP): pyproject.toml
	@echo "== setting up $(VENV): finsim-harness and its dependencies (about 3 minutes the first time)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e ".[dev]"
	touch $(STAMP)
	@echo "== $(VENV) ready"

demo: $(STAMP)
	$(VENV)/bin/harness run scenarios --quiet -n 2 \
		--junit out/demo/junit.xml --json out/demo/report.json --html out/demo/report.html

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

format: $(STAMP)
	$(VENV)/bin/ruff format finsim simulators harness tests bench examples loadtests

lint: $(STAMP)
	$(VENV)/bin/ruff check finsim simulators harness tests bench examples loadtests

types: $(STAMP)
	$(VENV)/bin/mypy

check: format lint types test

bench: $(STAMP)
	$(PY) -m bench.http_bench
	$(PY) -m bench.invariants_bench
	$(PY) -m bench.lifecycle_bench
	$(PY) -m bench.load_bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
