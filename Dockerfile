# Two images; docker-compose.yml builds each service's target:
#   api:    the API and Flower, from requirements-api.txt alone: no TensorFlow (what it
#           installs is checked against what the API loads by tests/test_api_image.py)
#   worker: the Celery workers, on the api image plus requirements.txt (Keras, TensorFlow)
FROM python:3.11-slim AS api

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TEXTGEN_DATA_DIR=/data
WORKDIR /app

COPY requirements-api.txt .
RUN pip install --no-cache-dir -r requirements-api.txt

COPY shared ./shared
COPY api ./api
# Flower's entry point is the Celery app without the tasks (worker/flower_app.py).
COPY worker/__init__.py worker/flower_app.py ./worker/

RUN useradd --create-home textgen && mkdir -p /data && chown textgen /data
USER textgen
EXPOSE 8000


FROM api AS worker-deps

USER root
ENV NLTK_DATA=/usr/local/share/nltk_data
# ACCELERATOR=gpu (Compose's gpu profile) swaps tensorflow-cpu for TensorFlow with its CUDA
# libraries, for workers started with --gpu; everything else is the same image.
ARG ACCELERATOR=cpu
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
 && if [ "$ACCELERATOR" = gpu ]; then \
      pip uninstall -y tensorflow-cpu \
      && pip install --no-cache-dir "tensorflow[and-cuda]==$(grep -oP '(?<=tensorflow-cpu==).*' requirements.txt)"; \
    fi \
 && python -c "import nltk; nltk.download('stopwords', download_dir='/usr/local/share/nltk_data', quiet=True)"


# The compiled LSTM op (worker/fused_lstm.py), built by the Makefile's own rule in a stage of
# its own so the compiler stays out of the image; on x86-64 for any CPU with AVX2 and FMA
# (x86-64-v3) rather than for the CPU that builds the image. If it does not build, or does
# not load where the image runs, the worker trains through Keras' loop and logs why.
FROM worker-deps AS native
RUN apt-get update && apt-get install -y --no-install-recommends g++ make \
 && rm -rf /var/lib/apt/lists/*
COPY Makefile .
COPY worker/native ./worker/native
RUN march=$([ "$(uname -m)" = x86_64 ] && echo x86-64-v3 || echo native) \
 && make -o .venv/.installed PY=python FUSED_LSTM_MARCH="$march" worker/native/fused_lstm.so \
 || echo "note: the fused LSTM op did not build; workers will train through Keras' loop"


FROM worker-deps AS worker

COPY worker ./worker
COPY --from=native /app/worker/native/ ./worker/native/
# The command line, which needs the whole requirements.txt (`python -m client ...`).
COPY client ./client
USER textgen
