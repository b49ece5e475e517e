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


FROM api AS worker

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

COPY worker ./worker
# The command line, which needs the whole requirements.txt (`python -m client ...`).
COPY client ./client
USER textgen
