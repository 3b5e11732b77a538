# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs handgrad, runs the main job offline
#   make test   creates .venv, installs handgrad with dev tools, lints and runs every test
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

.PHONY: install demo test lint gradcheck gpu-check tutorials
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/handgrad demo

gradcheck: $(VENV)/.installed
	$(VENV)/bin/handgrad gradcheck

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check handgrad tests examples tools

test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Rebuild every tutorial notebook (tutorials/src/*.py -> tutorials/*.ipynb, executed with
# its outputs); `make tutorials NAMES="01 03"` builds only those
tutorials: $(VENV)/.installed
	$(PY) tools/build_tutorials.py $(NAMES)

# On a machine with a CUDA torch (its own python3, no install): CUDA tests, gradcheck and
# benchmarks on the GPU in one run; figures as JSON under $(OUT) (default gpu-check-out)
gpu-check:
	tools/gpu_check.sh
