# mww: two commands for a newcomer -- `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := espeak-ng sox
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180

.PHONY: demo test test-one-thread test-fast lint system-deps install clean-demo

demo: install
	$(PY) flows/train_wakeword.py --config configs/demo.yaml

# Two pytest-xdist workers: many tests wait on a subprocess, a server or a single-threaded
# import, so two share the two cores better than one (TEST_WORKERS=0 runs them in one process).
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest -q -ra --durations=15 -n $(TEST_WORKERS)

# The suite with one TensorFlow/OpenMP thread: results must not hang on thread counts.
test-one-thread: install
	TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -ra

test-fast: install
	$(PY) -m pytest -q -ra -m "not slow"

lint: install
	$(VENV)/bin/ruff check mww_core tasks flows tests bench

# Debian packages, installed only when a tool is missing (needs root or sudo). SVOX Pico's
# pico2wave (libttspico-utils, Apache-2.0), MBROLA's English voices (mbrola-us1, -us2, -us3,
# -en1) and RHVoice's (rhvoice-english) are in Debian's non-free component, the mbrola
# program in contrib: when apt does not know one of them, this adds those two components alone,
# from the mirror and releases the system already uses (a copy of its debian.sources, or of its
# sources.list's deb lines), in /etc/apt/sources.list.d/mww-non-free.sources (or .list).
NON_FREE := /etc/apt/sources.list.d/mww-non-free
MBROLA_VOICES := us1 us2 us3 en1
system-deps:
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	command -v pico2wave >/dev/null || missing="$$missing libttspico-utils"; \
	command -v mbrola >/dev/null || missing="$$missing mbrola"; \
	for v in $(MBROLA_VOICES); do \
	  [ -f /usr/share/mbrola/$$v/$$v ] || missing="$$missing mbrola-$$v"; \
	done; \
	command -v RHVoice-test >/dev/null || missing="$$missing rhvoice"; \
	[ -f /usr/share/RHVoice/voices/bdl/voice.info ] || missing="$$missing rhvoice-english"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq; \
	  unknown=""; \
	  for p in $$missing; do \
	    apt-cache policy $$p | grep -q 'Candidate: [^(]' || unknown="$$unknown $$p"; \
	  done; \
	  if [ -n "$$unknown" ]; then \
	    if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
	      echo "Adding Debian's contrib and non-free components for$$unknown: $(NON_FREE).sources"; \
	      sed 's/^Components:.*/Components: contrib non-free/' /etc/apt/sources.list.d/debian.sources \
	        | $$SUDO tee $(NON_FREE).sources >/dev/null; \
	    else \
	      echo "Adding Debian's contrib and non-free components for$$unknown: $(NON_FREE).list"; \
	      grep -E '^deb ' /etc/apt/sources.list \
	        | sed -E 's/^(deb +(\[[^]]*\] +)?[^ ]+ +[^ ]+) .*/\1 contrib non-free/' \
	        | $$SUDO tee $(NON_FREE).list >/dev/null; \
	    fi; \
	    $$SUDO apt-get update -qq; \
	  fi; \
	  $$SUDO apt-get install -y -qq $$missing; \
	fi

install: system-deps $(STAMP)

# constraints.txt pins every Python package: other releases train another model from the same
# commit, data and seed (README "Reproducible installs"). CONSTRAINTS= installs the newest
# releases pyproject.toml allows instead.
CONSTRAINTS ?= constraints.txt
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@command -v $(PYTHON) >/dev/null || { echo "mww needs $(PYTHON) (Python 3.11) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[dev]"
	touch $(STAMP)

clean-demo:
	rm -rf runs/demo data/demo

# A local Prefect server for deployments/prefect.yaml (see deployments/README.md).
.PHONY: server
server: install
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200
