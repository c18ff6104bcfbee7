# The README's two commands: `make demo` (set up, then run the main job) and `make test` (set up, then the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_CPU := torch==2.13.0+cpu
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: demo test setup setup-dev system-deps

demo: setup
	$(BIN)/medsyn demo --out results/demo

test: setup-dev system-deps
	$(BIN)/python -m pytest -q

# torch first: without a GPU take the CPU wheel, because a bare `torch` requirement pulls a multi-GB CUDA build.
$(BIN)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q "torch>=2.11,<=2.14.1"; \
	else $(BIN)/pip install -q "$(TORCH_CPU)" || $(BIN)/pip install -q "$(TORCH_CPU)" --index-url $(TORCH_CPU_INDEX); fi
	touch $@

$(BIN)/.medsyn: $(BIN)/.torch pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(BIN)/.medsyn-dev: $(BIN)/.torch pyproject.toml
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(BIN)/.medsyn

setup: $(BIN)/.medsyn
setup-dev: $(BIN)/.medsyn-dev

# Debian's chromium for the leaderboard's browser test (never a browser downloaded by a test tool).
system-deps:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null; fi; }
