# Two commands do all set-up on a fresh machine (see README "Quickstart"):
#   make demo   -> the main job on the embedded synthetic world
#   make test   -> the test suite
#   make lint   -> ruff (pyflakes, isort, pyupgrade, bugbear); CI runs it before the tests
# Both create .venv and install into it only when pyproject.toml changed since the last install.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint install clean-venv peers clean-peers

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

# MediaPipe Hands peer (hoi_adapt/peers): its own venv, never the main one. mediapipe 0.10.14 is the last
# release whose wheel ships the palm-detection and hand-landmark models; its pins (protobuf<5, opencv-contrib,
# jax, the numpy 1.x ABI) clash with .venv. mediapipe goes in with --no-deps and then only the packages the
# Hands solution imports (the list and the reasons: hoi_adapt/peers/requirements-mediapipe.txt); pip's note
# that mediapipe 'requires jax, ... which is not installed' is expected. The last step builds the Hands graph
# from the models inside the wheel (nothing is downloaded).
PEER_VENV   ?= .venv-peers
PEER_STAMP  := $(PEER_VENV)/.installed
PEER_PYTHON ?= $(PYTHON)
PEER_REQS   := hoi_adapt/peers/requirements-mediapipe.txt

$(PEER_STAMP): $(PEER_REQS)
	@$(PEER_PYTHON) -c 'import sys; v=sys.version_info[:2]; sys.exit(0 if (3,9)<=v<=(3,12) else "mediapipe 0.10.14 has wheels for Python 3.9-3.12 only; found %d.%d. Run: make peers PEER_PYTHON=python3.11" % v)'
	@test -x $(PEER_VENV)/bin/python || $(PEER_PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PEER_VENV)/bin/python -m pip install --quiet --no-deps "mediapipe==0.10.14"
	$(PEER_VENV)/bin/python -m pip install --quiet -r $(PEER_REQS)
	$(PEER_VENV)/bin/python -c 'import mediapipe, mediapipe.python.solutions.hands as h; h.Hands(static_image_mode=True).close(); print("mediapipe", mediapipe.__version__, "ready in $(PEER_VENV)")'
	@touch $(PEER_STAMP)

peers: $(PEER_STAMP)

clean-peers:
	rm -rf $(PEER_VENV)
