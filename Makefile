# textgen: `make demo` runs the whole loop, `make test` runs the suite, `make up` the stack.
# Each creates the virtual environment first (once, and again when requirements.txt, the
# requirements-api.txt it includes, or pyproject.toml changes), with the `textgen` command in
# .venv/bin; `make test` adds requirements-test.txt (pytest, moto), which the runtime never
# needs. `make test-fast` runs the tests that start no process and train no model.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

# The compiled LSTM op training uses (worker/fused_lstm.py; without it, Keras' own loop),
# built against this .venv's TensorFlow for this machine's CPU.
FUSED_LSTM := worker/native/fused_lstm.so
TF_FLAGS = $(shell $(PY) -c "import tensorflow as tf; print(' '.join(tf.sysconfig.get_$(1)_flags()))" 2>/dev/null)

.PHONY: demo test test-fast lint up clean-venv

$(STAMP): requirements.txt requirements-api.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@# This checkout, editable (a change needs no reinstall): .venv/bin/textgen. Its
	@# dependencies are the pins above. setuptools leaves build notes beside pyproject.toml.
	$(PY) -m pip install --quiet --no-deps -e . && rm -rf textgen.egg-info
	@# The server's packages (api, shared, worker) are no part of the client's distribution:
	@# this .pth file puts the checkout on .venv's path, for textgen up, demo and token.
	echo "$(CURDIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/textgen-checkout.pth"
	@# NLTK's English stopwords (the `seed` preset). Offline this fails; seed jobs then say how to fix it.
	$(PY) -c "import nltk, sys; sys.exit(not nltk.download('stopwords', download_dir='$(VENV)/nltk_data', quiet=True))" 2>/dev/null || \
		echo "note: NLTK stopwords not downloaded (no network?); seed-preset jobs need NLTK_DATA"
	touch $(STAMP)

# -O3 -march=native: the op's kernel is written for AVX-512 where the CPU has it (a plain
# Eigen product otherwise). An image built to run on other machines passes a portable
# FUSED_LSTM_MARCH (the Dockerfile: x86-64-v3). TF's headers warn about their own deprecations.
# Written beside the library and renamed over it: a worker still running keeps the file it
# mapped (overwriting a loaded library in place crashes its process).
FUSED_LSTM_MARCH ?= native
$(FUSED_LSTM): worker/native/fused_lstm.cc worker/native/gemm.h worker/native/bf16_gemm.h $(STAMP)
	$(CXX) -shared -fPIC -O3 -march=$(FUSED_LSTM_MARCH) -Wno-deprecated-declarations -Wno-interference-size \
		$(call TF_FLAGS,compile) $< -o $@.tmp $(call TF_FLAGS,link)
	mv -f $@.tmp $@

# `exec` so that Ctrl-C and SIGTERM reach the stack runner itself, which stops its children.
demo: $(STAMP) $(FUSED_LSTM)
	exec $(VENV)/bin/textgen demo

up: $(STAMP) $(FUSED_LSTM)
	exec $(VENV)/bin/textgen up

$(TEST_STAMP): $(STAMP) $(FUSED_LSTM) requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $(TEST_STAMP)

test: $(TEST_STAMP)
	$(PY) -m pytest

# The tests that start no process and train no model: each marker pytest.ini declares is left
# out (tests/markers.py marks by fixture and fails a test that starts an unmarked process).
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -m "not slow and not stack and not browser and not netns and not subprocess and not keras"

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
