# Every target makes its own environment: .venv, filled from the lock (constraints.txt).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= quick
# Idle OpenMP threads sleep instead of spinning: with 2 cores and many tiny matmuls,
# spinning threads slow a busy machine down 10x (measured in benchmarks/).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: venv test test-all figures notebooks readme lint lab bench sweep clean student slides

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[notebooks,dev]'
	$(PY) -m ipykernel install --sys-prefix --name gradreg --display-name "gradreg (.venv)" >/dev/null
	touch $(STAMP)

# lint first: a style error fails fast, before minutes of tests. `make test` is the fast tier
# (every module, each mechanism small); `make test-all` adds the tests marked slow (CI runs it).
# pytest's exit code 5 (no test collected) is no failure: a tier can be empty for a narrowed run.
PYTEST := $(PY) -m pytest -q --durations=10
test: lint
	$(PYTEST) -m "not slow" || [ $$? -eq 5 ]

test-all: lint
	$(PYTEST) || [ $$? -eq 5 ]

figures: $(STAMP)
	$(PY) -m gradreg figures --profile $(PROFILE)

# the numbered notebooks (clean .ipynb) from their sources notebooks/NN_*.py (jupytext percent format);
# `python -m gradreg notebooks --check` says which are out of date
notebooks: $(STAMP)
	$(PY) -m gradreg notebooks

# README.md's headline and docs/results.md from data/results/ (gradreg/readme.py); tests/test_readme.py checks them
readme: $(STAMP)
	$(PY) -m gradreg readme

lint: $(STAMP)
	$(VENV)/bin/ruff check gradreg tests benchmarks notebooks

# the notebooks with the exercises' solutions stripped (nbgrader's markers): build/student/ and .zip
student: $(STAMP)
	$(PY) -m gradreg student --output-dir build/student

# reveal.js slides of notebooks 01-03, executed at $(PROFILE): build/slides/. REVEAL=npm (offline copy of
# reveal.js and MathJax in build/slides/vendor, from npm) | cdn (loaded when shown) | auto (npm if it works)
REVEAL ?= auto
slides: $(STAMP)
	$(PY) -m gradreg slides --profile $(PROFILE) --reveal $(REVEAL) --output-dir build/slides

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(PY) -m benchmarks.per_example
	$(PY) -m benchmarks.training
	$(PY) -m benchmarks.explorer

clean:
	rm -rf build .pytest_cache
