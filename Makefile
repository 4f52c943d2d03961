# The two set-up commands of the README. Each installs what it needs, then runs.
#   make demo   clean a small dataset end to end (offline unless SEGMIND_API_KEY is set)
#   make test   install the test stack (FFmpeg libraries, Chromium, CPU torch) and run the tests

PY ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# FFmpeg's shared libraries for torchcodec (datasets' Audio decoding); Chromium for the
# browser test of the explorer
APT_TEST := libavcodec59 libavformat59 libavutil57 libswresample4 libavdevice59 \
            libavfilter8 libswscale6 chromium

.PHONY: demo test install install-test

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
	$(PY) -m pip install -q -e ".[test]"

demo: install
	$(PY) -m samaudio_data.cli demo --out samaudio-demo

test: install-test
	$(PY) -m pytest
