# askdesk developer tasks. Run `make help` for the list.
#
#   make venv            create .venv (python3 >= 3.11) and pip install -e '.[dev]'
#   make fonts           install a font with Chinese glyphs for the charts if missing (as root: apt-get)
#   make test            ruff, then pytest on SQLite, then pytest on PostgreSQL
#   make test-sqlite     pytest on SQLite only
#   make test-postgres   pytest on a throwaway PostgreSQL (scripts/with-postgres.sh)
#   make lint            ruff check .
#   make demo            .venv/bin/askdesk demo
#   make bench           .venv/bin/python -m bench (if bench/ has a __main__)
#   make clean           caches and build output; `make distclean` also removes .venv
#
# Variables: PYTEST_ARGS (extra pytest arguments, e.g. PYTEST_ARGS='-x -k digest'),
# PYTHON (interpreter used to create the venv, default python3), DEMO_ARGS, BENCH_ARGS.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.askdesk-installed
PIP_FLAGS ?= --disable-pip-version-check --no-input --progress-bar off
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=
WITH_POSTGRES := scripts/with-postgres.sh

.PHONY: help venv fonts demo test test-sqlite test-postgres lint bench clean distclean

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))
	@echo "  variables: PYTEST_ARGS, PYTHON, DEMO_ARGS, BENCH_ARGS"

# ---------------------------------------------------------------- venv
venv: $(STAMP)

# Re-runs whenever pyproject.toml is newer than the stamp; the stamp is only
# written after a successful install, so a failed install is retried next time.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "error: '$(PYTHON)' not found on PATH; askdesk needs Python >= 3.11" \
	       "(or run: make venv PYTHON=/path/to/python3.11)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "error: askdesk needs Python >= 3.11 but '$(PYTHON)' is $$($(PYTHON) -V 2>&1)" \
	       "($$(command -v $(PYTHON))); put a newer python3 first on PATH or run" \
	       "make venv PYTHON=python3.11" >&2; exit 1; }
	@if [ -x $(VENV_PY) ] && $(VENV_PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then \
	  echo "== reusing $(VENV) ($$($(VENV_PY) -V 2>&1)) =="; \
	else \
	  echo "== creating $(VENV) with $$($(PYTHON) -V 2>&1) ($$(command -v $(PYTHON))) =="; \
	  $(PYTHON) -m venv --clear $(VENV); \
	fi
	$(VENV_PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(VENV_PY) -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $(STAMP)

# Chinese team and department names in charts need a CJK font (scripts/install-fonts.sh).
fonts:
	@bash scripts/install-fonts.sh

# ---------------------------------------------------------------- run
# The demo runs without the font too (charts then show boxes for Chinese names, and askdesk says so once).
demo: venv
	@bash scripts/install-fonts.sh || echo "make demo: continuing without a CJK font" >&2
	$(VENV)/bin/askdesk demo $(DEMO_ARGS)

bench: venv
	@if [ -f bench/__main__.py ] || [ -f bench.py ]; then \
	  echo "$(VENV_PY) -m bench $(BENCH_ARGS)"; $(VENV_PY) -m bench $(BENCH_ARGS); \
	else \
	  echo "no bench module (bench/__main__.py); nothing to run"; \
	fi

# ---------------------------------------------------------------- checks
lint: venv
	@echo "== ruff check =="
	$(VENV)/bin/ruff check .

# One pytest leg. $(1) = label, $(2) = command prefix. pytest's exit code 5
# ("no tests collected") is reported loudly but does not fail the leg.
define pytest_leg
	@echo "== tests on $(1) =="
	@rc=0; $(2) $(VENV_PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "== $(1): no tests collected (pytest exit 5) =="; rc=0; fi; \
	exit $$rc
endef

test-sqlite: venv fonts
	$(call pytest_leg,SQLite,env -u ASKDESK_TEST_DATABASE_URL -u ASKDESK_PG_ADMIN_URL)

test-postgres: venv fonts
	$(call pytest_leg,PostgreSQL,bash $(WITH_POSTGRES))

# Lint first (stops on failure); then both test legs run even if the first one
# fails, and the target fails if either did.
test: venv
	@$(MAKE) --no-print-directory lint
	@failed=""; \
	$(MAKE) --no-print-directory test-sqlite || failed="$$failed SQLite"; \
	$(MAKE) --no-print-directory test-postgres || failed="$$failed PostgreSQL"; \
	if [ -n "$$failed" ]; then echo "== FAILED: tests on$$failed ==" >&2; exit 1; fi

# ---------------------------------------------------------------- cleanup
clean:
	rm -rf build dist demo-out .pytest_cache .ruff_cache .hypothesis ./*.egg-info
	find . -path ./.venv -prune -o -path ./.git -prune -o -type d -name __pycache__ -print0 \
	  | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV)
