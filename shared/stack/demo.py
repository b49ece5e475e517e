"""`make demo`: the whole loop on the local stack, from a book to generated text.

Knobs (environment): CORPUS (a text file; default Frankenstein, which the server fetches
from Project Gutenberg), PRESET (default), EPOCHS (40), MAX_SECONDS (150,
the training budget that keeps the demo under 5 minutes on 2 cores), LENGTH (400),
SAMPLES (2), TEMPERATURE (0.8), PROMPT. Early stopping ends training sooner once the
validation loss stops improving.
"""

import os
import sys
import time
from pathlib import Path

from client.api_client import Client
from client.errors import ApiError
from client.follow import follow, sample_text
from client.records import JobStatus
from shared.stack.runner import LocalStack

FRANKENSTEIN_EBOOK = 84  # Project Gutenberg's number for Frankenstein


def _corpus_path():
    if not os.environ.get("CORPUS"):
        return None
    path = Path(os.environ["CORPUS"])
    if not path.is_file():
        raise SystemExit(f"textgen demo: CORPUS={path} is not a file")
    return path


def _upload(client, path):
    """The corpus: the CORPUS file, or Frankenstein fetched by the server."""
    if path is not None:
        return client.upload(path)  # the same file again: the corpus made the first time
    try:
        return client.gutenberg_corpus(FRANKENSTEIN_EBOOK, name="frankenstein")
    except ApiError as e:
        if e.status == 503:
            raise SystemExit("textgen demo: cannot fetch Frankenstein from Project Gutenberg "
                             "(no network?); set CORPUS=path/to/file.txt to train on your "
                             "own text") from None
        raise


def run_demo():
    started = time.monotonic()
    data_dir = os.environ.get("TEXTGEN_DATA_DIR", "./data")
    corpus_path = _corpus_path()
    training = {"epochs": int(os.environ.get("EPOCHS", "40")),
                "max_seconds": float(os.environ.get("MAX_SECONDS", "150"))}
    options = {"prompt": os.environ.get("PROMPT", ""),
               "length": int(os.environ.get("LENGTH", "400")),
               "num_samples": int(os.environ.get("SAMPLES", "2")),
               "temperature": float(os.environ.get("TEMPERATURE", "0.8"))}

    print(f"starting the local stack (data in {Path(data_dir).resolve()})...", flush=True)
    with LocalStack(data_dir=data_dir, port=int(os.environ.get("TEXTGEN_PORT", "8000")),
                    redis_url=os.environ.get("REDIS_URL") or None) as stack:
        if stack.token_created:
            print(f"created a local API token (in {stack.data_dir / 'token'}, mode 0600; "
                  f"shown once): {stack.token}", flush=True)
        client = Client(stack.url, token=stack.token or os.environ.get("TEXTGEN_TOKEN"))
        corpus = _upload(client, corpus_path)
        print(f"corpus {corpus['id']}: {corpus['chars']:,} characters, {corpus['encoding']}, "
              f"{corpus['vocab_size']} distinct", flush=True)
        job = client.train(corpus["id"], os.environ.get("PRESET", "default"), training=training)
        shape = job["spec"]["model"]  # the budget may have sized it (shared/sizing/model_sizing.py)
        print(f"training job {job['id']} ({job['spec']['preset']} preset: {shape['layers']}x"
              f"{shape['units']} LSTM, dropout {shape['dropout']:g}; up to "
              f"{training['epochs']} epochs or {training['max_seconds']:.0f} s)", flush=True)
        job = follow(client, job["id"])  # prints how it ended
        if job["status"] != JobStatus.SUCCEEDED:
            return 1
        model_id = job["result"]["model_id"]
        model = client.model(model_id)
        metrics = model["metrics"]
        if metrics.get("bits_per_char") is not None:
            print(f"model {model_id}: {metrics['bits_per_char']:.3f} bits per character "
                  f"on held-out text", flush=True)
        gen = client.generate(model_id, **options, wait_s=60)
        gen = client.wait(gen["id"], poll_s=0.3)  # at once when it ended within the minute
        if gen["status"] != JobStatus.SUCCEEDED:
            print(f"generation {gen['status']}: {gen['error']}", file=sys.stderr)
            return 1
        for i, sample in enumerate(client.samples(gen["id"]), 1):
            print(f"\n--- sample {i} (temperature {sample['temperature']}) ---")
            print(sample_text(sample, options["prompt"]))
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s", flush=True)
    return 0
