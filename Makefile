# Set-up and main jobs. Each target creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch, installed first so that nothing pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.skdgm-installed
# Embeddings computed once, reused by later runs of the benchmark.
EMBEDDING_CACHE ?= .cache/embeddings

# glibc keeps freed memory in the process instead of unmapping every large block
# (benchmarks/bench_allocator.py): fine-tuning on a CPU spent a fifth to a quarter of its
# time in the kernel without it. Exported to the benchmark runs only; no effect off glibc.
ALLOCATOR := MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 MALLOC_TOP_PAD_=1000000000

.PHONY: install test demo docs lint benchmark clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[text,offline,setfit,plot,tests,docs,dask]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(ALLOCATOR) $(PY) -m skdgm.benchmark --config demo --cache-dir $(EMBEDDING_CACHE)

benchmark: $(STAMP)
	$(ALLOCATOR) $(PY) -m skdgm.benchmark --config full --cache-dir $(EMBEDDING_CACHE)

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

lint: $(STAMP)
	$(PY) -m ruff check skdgm tests examples benchmarks studies
	$(PY) -m ruff format --check skdgm tests examples benchmarks studies

clean:
	rm -rf $(VENV) docs/_build docs/results.rst docs/generated docs/auto_examples docs/gen_modules docs/sg_execution_times.rst build dist *.egg-info
