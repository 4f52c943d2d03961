# The two set-up commands of the README. Each installs what it needs, then runs.
#   make demo   clean a small folder of clips end to end (offline unless SEGMIND_API_KEY is set)
#   make test   install the test stack (FFmpeg libraries, Chromium, CPU torch, Ray, moto,
#               ruff, mypy), run the checks (lint), then the tests at the latest versions,
#               then again at the oldest supported ones (test-oldest)
#   make lint   only the checks: ruff (lint and format) and mypy, configured in pyproject.toml

PY ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# FFmpeg's shared libraries for torchcodec (datasets' Audio decoding); Chromium for the
# browser test of the explorer; espeak-ng and sox for the quality triage's labelled corpus
APT_TEST := libavcodec59 libavformat59 libavutil57 libswresample4 libavdevice59 \
            libavfilter8 libswscale6 chromium espeak-ng sox
# the oldest supported versions: a fresh venv pinned by this constraints file (no torch:
# datasets 3.x decodes Audio with soundfile); the browser test and the fresh-install test
# (tests/test_fresh_install.py: the README from a new venv) run in the latest one only, as
# do the benchmarks' smoke runs (tests/test_benchmarks.py: minutes of timing runs whose
# library paths the rest of the suite covers at the oldest versions).
# Without the [quality] extra: the triage runs there without speech detection (":no_vad"),
# and the tests that need the detector skip, saying so
OLDEST_VENV ?= .venv-oldest
# CI builds it with $(PY) (3.11); OLDEST_PY=python3.10 tests the oldest Python as well
OLDEST_PY ?= $(PY)
OLDEST_CONSTRAINTS := constraints/oldest.txt

.PHONY: demo lint test test-latest test-oldest install install-test

install:
	$(PY) -m pip install -q -e .

install-test:
	@missing="$$(for p in $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	# CPU torch (a wheel on disk here; an unpinned torch pulls CUDA) and a torchcodec built for it
	$(PY) -m pip install -q torch==2.13.0 "torchcodec<0.14"
	# the Ray extra and moto's S3 server for tests/test_ray.py (the oldest env skips it)
	$(PY) -m pip install -q -e ".[test,quality,ray]" "moto[server]"

demo: install
	$(PY) -m samaudio_data.cli demo --out samaudio-demo

test: lint test-latest test-oldest

# ruff and mypy come with the test extra; `ruff format --check` only reports: run
# `ruff format` (and `ruff check --fix`) to apply
lint: install-test
	$(PY) -m ruff check
	$(PY) -m ruff format --check
	$(PY) -m mypy

test-latest: install-test
	$(PY) -m pytest

# A new venv every time, so that nothing newer lingers; the package is installed from this
# checkout (not editable) and the suite run from it.
test-oldest:
	rm -rf $(OLDEST_VENV)
	$(OLDEST_PY) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q -c $(OLDEST_CONSTRAINTS) ".[test]"
	$(OLDEST_VENV)/bin/python -m pip check
	# the installed package (not this checkout: run from elsewhere) ships the explorer's front end
	cd / && $(abspath $(OLDEST_VENV))/bin/python -c "from samaudio_data.explorer._widget import \
	  ExplorerWidget as W; w = W(); assert 'export default' in w._esm and '.sa-root' in w._css"
	$(OLDEST_VENV)/bin/python -m pytest --ignore-glob="tests/test_*browser*.py" \
	  --ignore=tests/test_fresh_install.py --ignore=tests/test_benchmarks.py
