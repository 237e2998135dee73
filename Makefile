# Two commands do all set-up on a fresh machine (see README "Quickstart"):
#   make demo   -> the main job on the embedded synthetic world
#   make test   -> the test suite
#   make lint   -> ruff (pyflakes, isort, pyupgrade, bugbear); CI runs it before the tests
# Both create .venv and install into it only when pyproject.toml changed since the last install.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint install clean-venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; v=sys.version_info[:2]; sys.exit(0 if (3,10)<=v<=(3,13) else "hoi_adapt needs Python 3.10-3.13 (the pytorch3d wheel exists only for those); found %d.%d. Run: make PYTHON=python3.11 ..." % v)'
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hoi-adapt demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
