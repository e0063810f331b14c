# convbook: `make book` builds the HTML book, `make test` runs every check (see README.md).
# Needs only Python >= 3.11 and GNU make: everything else goes into ./.venv, nothing is installed globally.
#
#   make book            create .venv if needed, execute every notebook, build _build/html
#   make test            unit tests, doctests, notebooks (nbval), book build with -W, browser test
#   make lab             JupyterLab on book/ with the project's kernel
#   make clean           remove build outputs (keeps .venv);  make distclean  also removes .venv
#   TORCH=0              skip torch==2.13.0 (CPU), which is installed by default for the PyTorch checks

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.convbook-installed
TORCH ?= 1
TORCH_VERSION := 2.13.0
TORCH_STAMP := $(VENV)/.torch-$(TORCH_VERSION)-installed
# Extra pip arguments for the torch install. PyPI's Linux wheel of torch is the CUDA build (GBs of
# nvidia-* dependencies); where no CPU wheel is at hand (pip's find-links), PyTorch's CPU index gives
# the CPU build: make TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" ...
TORCH_PIP_ARGS ?=
HTML := _build/html
T0 := $(shell date +%s)

# Every recipe runs with the venv first on PATH, so `python`, `jupyter-book` and the `python3`
# kernelspec that ipykernel installs into the venv all resolve to the venv's interpreter.
export PATH := $(BIN):$(PATH)
# An Agg backend in the caller's environment would silently drop every notebook figure.
unexport MPLBACKEND

PYTEST := $(BIN)/python -m pytest
JB := $(BIN)/jupyter-book
# --all: re-read every page, so `execute_notebooks: force` re-runs every notebook and no
# warning hides in an incremental build. The old index.html goes first, so check-index proves
# that this build wrote one.
JB_BUILD := rm -f $(HTML)/index.html && $(JB) build . --all -n --keep-going

# $(call step,NAME,COMMAND): run COMMAND, then print its wall time (also when it fails).
step = @t0=$$(date +%s.%N); echo ">>> $(1)"; rc=0; $(2) || rc=$$?; \
	echo "<<< $(1): $$(awk -v a=$$t0 -v b=$$(date +%s.%N) 'BEGIN { printf "%.1f", b - a }') s, exit $$rc"; \
	exit $$rc

.PHONY: help install book test lab clean distclean check-index

help:
	@sed -n '1,8p' Makefile | sed 's/^# \{0,1\}//'

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "convbook needs Python >= 3.11, got " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(call step,install package and book dependencies,$(BIN)/python -m pip install --quiet -e ".[book]")
	@touch $@

$(TORCH_STAMP): | $(VENV)/bin/python
	$(call step,install torch $(TORCH_VERSION),$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) "torch==$(TORCH_VERSION)")
	@touch $@

install: $(STAMP) $(if $(filter 1 yes true,$(TORCH)),$(TORCH_STAMP))

check-index:
	@test -f $(HTML)/index.html || { echo "error: $(HTML)/index.html is missing: the book did not build"; exit 1; }
	@echo "ok: $(HTML)/index.html"

book: install
	$(call step,build the book (executes every notebook),$(JB_BUILD))
	@$(MAKE) --no-print-directory check-index

test: install
	$(call step,unit tests,$(PYTEST) tests -m "not browser")
	$(call step,doctests,$(PYTEST) --doctest-modules src/convbook)
	$(call step,notebooks with nbval,$(PYTEST) --nbval-lax --nbval-current-env book)
	$(call step,book build with -W,$(JB_BUILD) -W)
	@$(MAKE) --no-print-directory check-index
	$(call step,browser test of the built book,$(PYTEST) tests/test_browser.py -m browser)
	@echo "make test: every step passed, $$(( $$(date +%s) - $(T0) )) s in all (installs included)"

# (as root, e.g. in a container, JupyterLab refuses to start without --allow-root)
lab: install
	$(BIN)/jupyter lab --ServerApp.root_dir=book $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf _build .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) src/*.egg-info
