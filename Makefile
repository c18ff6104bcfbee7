# The README's two commands: `make demo` (set up, then run the main job) and `make test` (set up, then the tests).
# Both install the exact versions of constraints.txt; `make test-latest` checks the newest releases the
# ranges of pyproject.toml admit, and `make lock` refreshes the lock (README, "Versions").
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := constraints.txt
TORCH_CPU := torch==2.13.0
TORCH_GPU := torch>=2.11,<=2.14.1
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
PIP_FLAGS := --progress-bar on --disable-pip-version-check
# the tests that lean on transformers, lighteval, datasets and evaluate internals (run by test-latest)
LATEST_TESTS := tests/test_qwen_fast_path.py tests/test_transformers_backend.py tests/test_prefix_sharing.py \
	tests/test_eval_command.py tests/test_metric_module.py tests/test_doctests.py tests/test_dataset_builder.py tests/test_build.py \
	tests/test_endpoint_backend.py tests/test_response_cache.py tests/test_demo.py tests/test_gpu_eval.py \
	tests/test_transformers_serve.py tests/test_posterior_honesty.py tests/test_attention.py \
	tests/test_families.py tests/test_family_*.py tests/test_placement.py tests/test_loading.py tests/test_big_model_loading.py
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: demo test test-latest lock setup setup-dev system-deps

demo: setup
	@echo "==> [3/3] medsyn demo --out results/demo"
	$(BIN)/medsyn demo --out results/demo

test: setup-dev system-deps
	@echo "==> running the test suite (offline)"
	$(BIN)/python -m pytest -q

# torch first: without a GPU take the CPU wheel, because a bare `torch` requirement pulls a multi-GB CUDA build.
define install_torch
	@echo "==> [1/3] $(1): virtual environment and torch"
	$(PYTHON) -m venv $(1)
	$(1)/bin/pip install $(PIP_FLAGS) --upgrade "pip>=25"
	if command -v nvidia-smi >/dev/null 2>&1; then $(1)/bin/pip install $(PIP_FLAGS) "$(TORCH_GPU)"; \
	else $(1)/bin/pip install $(PIP_FLAGS) "$(TORCH_CPU)" || $(1)/bin/pip install $(PIP_FLAGS) "$(TORCH_CPU)" --index-url $(TORCH_CPU_INDEX); fi
endef

$(BIN)/.torch:
	$(call install_torch,$(VENV))
	touch $@

$(BIN)/.medsyn: $(BIN)/.torch pyproject.toml $(LOCK)
	@echo "==> [2/3] medsyn and its dependencies, as locked in $(LOCK)"
	$(BIN)/pip install $(PIP_FLAGS) -c $(LOCK) -e .
	touch $@

$(BIN)/.medsyn-dev: $(BIN)/.torch pyproject.toml $(LOCK)
	@echo "==> [2/3] medsyn with the dev extra, as locked in $(LOCK)"
	$(BIN)/pip install $(PIP_FLAGS) -c $(LOCK) -e ".[dev]"
	touch $@ $(BIN)/.medsyn

setup: $(BIN)/.medsyn
setup-dev: $(BIN)/.medsyn-dev

# Debian's chromium for the leaderboard's browser test (never a browser downloaded by a test tool), and a CJK font
# for MEDSYN-mini's Chinese laboratory tables (test_sample regenerates them byte for byte).
SYSTEM_PACKAGES := chromium chromium-driver fonts-wqy-zenhei
system-deps:
	@echo "==> system packages: $(SYSTEM_PACKAGES)"
	@{ command -v chromium && command -v chromedriver && test -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc; } >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

# The newest releases the ranges of pyproject.toml admit for medsyn's own dependencies, in a separate environment:
# the locked set first (a consistent start), then every direct dependency upgraded as far as its range allows (its
# own dependencies move only where it needs). A resolve from nothing spends ~8 minutes backtracking through
# inspect-ai releases (lighteval's dependency; botocore and fsspec pins), as `make lock` does.
TORCH_SPEC = $$(command -v nvidia-smi >/dev/null 2>&1 && echo "$(TORCH_GPU)" || echo "$(TORCH_CPU)")
DIRECT_DEPS = $$(.venv-latest/bin/python -c "import re, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	print(' '.join(n for r in p['dependencies'] + p['optional-dependencies']['dev'] if (n := re.match(r'[A-Za-z0-9_.-]+', r)[0]) != 'torch'))")
test-latest: system-deps
	rm -rf .venv-latest
	@echo "==> [1/3] .venv-latest: virtual environment, torch and the locked set"
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/pip install $(PIP_FLAGS) --upgrade "pip>=25"
	.venv-latest/bin/pip install $(PIP_FLAGS) -c $(LOCK) "$(TORCH_SPEC)" -e ".[dev]"
	@echo "==> [2/3] every direct dependency at the newest release its range admits (no lock)"
	.venv-latest/bin/pip install $(PIP_FLAGS) --upgrade -e ".[dev]" $(DIRECT_DEPS)
	.venv-latest/bin/pip list --format=freeze | grep -iE '^(transformers|lighteval|datasets|evaluate|huggingface.hub|accelerate|tokenizers|torch)=='
	@echo "==> [3/3] the tests that touch library internals"
	.venv-latest/bin/python -m pytest -q $(LATEST_TESTS)

# Re-resolve every dependency at its newest admitted release and write the lock (torch is installed apart).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install $(PIP_FLAGS) --upgrade "pip>=25"
	.venv-lock/bin/pip install $(PIP_FLAGS) "$(TORCH_SPEC)" -e ".[dev,sample]"
	{ echo "# Exact versions tested together (make test, make demo). Refresh: make lock, then make test and make test-latest."; \
	  echo "# torch is installed first and apart (Makefile: TORCH_CPU / TORCH_GPU), so it is not listed."; \
	  .venv-lock/bin/pip list --format=freeze --exclude-editable | grep -viE '^(torch|pip)==' ; } > $(LOCK)
	@echo "wrote $(LOCK)"
