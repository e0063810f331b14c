# convbook: `make book` builds the HTML book, `make test` runs every check (see README.md).
# Needs only Python >= 3.11 and GNU make: everything else goes into ./.venv, nothing is installed globally.
#
#   make book            create .venv if needed, execute every notebook, build _build/html
#   make test            unit tests, doctests, notebooks (nbval), book build with -W, browser tests
#   make lab             JupyterLab on book/ with the project's kernel
#   make translations    extract the English messages, update locale/*/ catalogs, show status
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

# Every pytest run stops (SIGINT: pytest prints where it was) if it runs past 30 minutes,
# 4-5 times its longest here: a run that waits forever would otherwise use up CI's limit
# and say nothing (one browser check did, 2026-12-04). Where coreutils' timeout is missing
# (macOS) the runs are unbounded.
LIMIT := $(shell command -v timeout >/dev/null && echo "timeout --foreground -s INT -k 60 1800")
PYTEST := $(LIMIT) $(BIN)/python -m pytest
JB := $(BIN)/jupyter-book
# --all: re-read every page, so no warning hides in an incremental build. The old index.html
# goes first, so check-index proves that this build wrote one.
JB_BUILD := rm -f $(HTML)/index.html && $(JB) build . --all -n --keep-going

# Two editions from the same notebooks: English at _build/html, Chinese at _build/html/zh.
# Each builds from a config that book/_ext/translation.py derives from _config.yml, with
# `execute_notebooks: cache` and one cache for both: emptied first, so the English build
# executes every notebook (a change in src/ cannot leave stale outputs) and the Chinese one
# reuses those outputs. $(1): extra jupyter-book options (-W).
I18N := $(BIN)/python book/_ext/translation.py
book_en = rm -rf _build/.jupyter_cache $(HTML)/zh && $(I18N) configs _build \
	&& $(JB_BUILD) $(1) --config _build/_config.en.yml
book_zh = rm -rf _build/zh $(HTML)/zh && $(JB) build . --all -n --keep-going $(1) \
	--config _build/_config.zh_CN.yml --path-output _build/zh && mv _build/zh/_build/html $(HTML)/zh

# $(call step,NAME,COMMAND): run COMMAND, then print its wall time (also when it fails).
# $(call timed,...) is the same inside a shell command of its own (no leading @).
timed = t0=$$(date +%s.%N); echo ">>> $(1)"; rc=0; $(2) || rc=$$?; \
	echo "<<< $(1): $$(awk -v a=$$t0 -v b=$$(date +%s.%N) 'BEGIN { printf "%.1f", b - a }') s, exit $$rc"; \
	exit $$rc
step = @$(call timed,$(1),$(2))

# make test runs its steps in three lanes at once (each step keeps about one core busy, and
# no test times anything). The book's lane is the longest: the English build (103% of one
# core, 229 s alone on a 2-core Zen 1), the check of the chapters it executed, the Chinese
# build, then the browser test of both editions (two chromiums, pytest-xdist). The other
# two lanes run under `nice`, so on 2 cores the book's lane keeps a core while they share
# the other: nbval then the doctests; JupyterLab's test (first, while the book's lane
# leaves it room: its browser waits have timeouts) then the unit tests. A failing step
# fails make test once every lane has ended; the two niced lanes' logs are printed then.
# The English build executes the chapters beside nbval, so the benchmark chapter's live
# run shows a busy machine there (`make book` builds alone). On the 2-core Zen 1: the
# English build 304 s in its lane (229 s alone), and make test 480 s where the steps two
# or three at a time, with one chromium, took 706 s (the same tree, 5 December 2026).
NICE := nice -n 5
NB_LOG := _build/notebooks-and-doctests.log
UNIT_LOG := _build/lab-and-unit-tests.log
nb_lane = nb=0; ($(call timed,notebooks with nbval,\
	$(NICE) $(PYTEST) --nbval-lax --nbval-current-env book)) || nb=$$?; \
	doc=0; ($(call timed,doctests,\
	$(NICE) $(PYTEST) -p no:cacheprovider --doctest-modules src/convbook)) || doc=$$?; \
	test $$nb = 0 -a $$doc = 0
unit_lane = lb=0; ($(call timed,a chapter run in JupyterLab,\
	$(NICE) $(PYTEST) tests/test_lab.py -m lab)) || lb=$$?; \
	ut=0; ($(call timed,unit tests,$(NICE) $(PYTEST) -p no:cacheprovider tests \
	-m "not browser and not lab and not executed")) || ut=$$?; \
	test $$lb = 0 -a $$ut = 0
book_lane = ($(call timed,book build with -W: English (executes every notebook),\
	$(call book_en,-W))) || exit 1; ex=0; \
	($(call timed,the executed chapters: no check skipped or failed,\
	$(PYTEST) tests/test_executed.py -m executed)) || ex=$$?; \
	($(call timed,book build with -W: Chinese (the same outputs),$(call book_zh,-W))) \
	&& $(MAKE) --no-print-directory check-index \
	&& ($(call timed,browser test of the built book (two chromiums),\
	$(PYTEST) -n 2 tests/test_browser.py -m browser)) && test $$ex = 0

.PHONY: help install book test lab clean distclean check-index translations

help:
	@sed -n '1,9p' Makefile | sed 's/^# \{0,1\}//'

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
	@for f in $(HTML)/index.html $(HTML)/zh/index.html; do \
		test -f $$f || { echo "error: $$f is missing: the book did not build"; exit 1; }; echo "ok: $$f"; done

book: install
	$(call step,build the English book (executes every notebook),$(call book_en))
	$(call step,build the Chinese book (the same outputs),$(call book_zh))
	@$(MAKE) --no-print-directory check-index

# After an English edit: new messages into locale/*/LC_MESSAGES/*.po (README "Translations").
translations: install
	$(call step,extract messages and update the catalogs,$(I18N) update)

test: install
	$(call step,ruff: lint and format at 88 columns (src tests book tools),$(BIN)/ruff check src tests book tools && $(BIN)/ruff format --check src tests book tools)
	@mkdir -p _build; ($(nb_lane)) > $(NB_LOG) 2>&1 & nb=$$!; \
	($(unit_lane)) > $(UNIT_LOG) 2>&1 & unit=$$!; \
	book=0; ($(book_lane)) || book=$$?; \
	nbrc=0; wait $$nb || nbrc=$$?; cat $(NB_LOG); \
	unitrc=0; wait $$unit || unitrc=$$?; cat $(UNIT_LOG); \
	test $$book = 0 -a $$nbrc = 0 -a $$unitrc = 0
	@echo "make test: every step passed, $$(( $$(date +%s) - $(T0) )) s in all (installs included)"

# (as root, e.g. in a container, JupyterLab refuses to start without --allow-root)
lab: install
	$(BIN)/jupyter lab --ServerApp.root_dir=book $(if $(filter 0,$(shell id -u)),--allow-root)

clean:
	rm -rf _build .pytest_cache .hypothesis
	find locale -name '*.mo' -delete
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) src/*.egg-info
