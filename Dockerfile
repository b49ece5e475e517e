# One image for the API, the workers and Flower; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    TEXTGEN_DATA_DIR=/data NLTK_DATA=/usr/local/share/nltk_data
WORKDIR /app

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

COPY shared ./shared
COPY api ./api
COPY worker ./worker
COPY client ./client

RUN useradd --create-home textgen && mkdir -p /data && chown textgen /data
USER textgen
EXPOSE 8000
