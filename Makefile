# Every target uses the project virtual environment in .venv, created on demand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# The CPU build of torch; a bare "torch" requirement would pull a multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: install install-runtime demo test bench default-model dist clean

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed: $(VENV)/.runtime pyproject.toml
	$(PIP) install --quiet -e '.[test,ray,plot]'
	touch $@

# Runtime only: enough for `audioclf` itself.
install-runtime: $(VENV)/.runtime

# Runtime plus the test extra (transformers as the reference, Ray for the cluster engine) and the plot extra
# (matplotlib for pictures).
install: $(VENV)/.installed

# The main job on the bundled samples with the bundled default model: no network needed.
demo: $(VENV)/.runtime
	$(VENV)/bin/audioclf classify samples/ --format table

test: install
	$(PY) -m pytest -q

# Benchmark against the transformers pipeline, 1-hour file included (~45 min on 2 cores). Models and audio are
# built once into .bench-cache/; the table goes to stdout, the JSON to .bench-cache/results.json.
$(VENV)/.bench: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test,ray,bench]'
	touch $@

bench: $(VENV)/.bench
	$(PY) scripts/bench.py --long

# Re-create the bundled default model: synthesize the keyword data with espeak-ng (~2 min), then train (~35 min on one core).
default-model: install-runtime
	command -v espeak-ng >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng)
	$(PY) scripts/synth_keywords.py --out data/synth-kws --seed 0 --jobs 2 --per-class-train 800
	$(PY) scripts/train_default_model.py --data data/synth-kws --seed 0 --epochs 20 --threads 1

# The sdist (with the tests, samples and scripts: `make test` and `make demo` work from it) and the wheel, in dist/.
dist: $(VENV)/.installed
	$(PY) -c "from setuptools import build_meta as backend; backend.build_sdist('dist'); backend.build_wheel('dist')"

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
