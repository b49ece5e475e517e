"""How soon a generation's text reaches a client: its `running` event to its first delta.

Starts the local stack (embedded Redis, gunicorn, one train and one generate worker) in a
scratch directory, trains a small model, generates once so the worker holds it loaded
(worker/model_cache.py), then runs `--runs` generation jobs one after another. Each is
followed over the API's event stream (SSE through gunicorn, as `textgen generate --stream`
does); for each it takes:

- to client: the `running` event's time (the worker's clock, milliseconds) to the moment
  the first `text` event is parsed here (same host, same clock);
- in worker: the `running` event's time to the first `text` event's time (both written by
  the worker): the sampler's and the job store's share of it.

    .venv/bin/python -m bench.stream_latency [--runs 30] [--units 128] [--layers 2]
        [--length 2000] [--num-samples 1]
"""

import argparse
import os
import secrets
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.load import TEXT, percentile  # noqa: E402
from client.api_client import Client  # noqa: E402
from shared.stack.runner import LocalStack, free_port  # noqa: E402

GOAL_MS = 300  # issue 18: the first delta within this of the job's start


def epoch_s(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def trained_model(api, scratch, units, layers):
    path = Path(scratch) / "corpus.txt"
    path.write_text(TEXT)
    spec = {"model": {"units": units, "layers": layers},
            "training": {"epochs": 1, "seq_length": 32, "batch_size": 64}}
    job = api.wait(api.train(api.upload_corpus(path)["id"], "default", **spec)["id"],
                   poll_s=0.2, timeout_s=600)
    if job["status"] != "succeeded":
        raise SystemExit(f"training failed: {job['error']}")
    return job["result"]["model_id"]


def first_delta(api, model_id, length, num_samples=1):
    """(to client, in worker) in seconds for one generation job."""
    job = api.generate(model_id, prompt="It was ", length=length, num_samples=num_samples)
    running = first_text = None
    for event in api.stream_events(job["id"]):
        if event["type"] == "status" and event["data"]["status"] == "running":
            running = event
        elif event["type"] == "text" and first_text is None:
            arrived = time.time()
            first_text = event
    if running is None or first_text is None:
        raise SystemExit(f"job {job['id']}: no running or text event")
    started = epoch_s(running["time"])
    return arrived - started, epoch_s(first_text["time"]) - started


def ms(values, q):
    return f"{percentile(values, q) * 1000:.0f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--length", type=int, default=2000, help="tokens per sample")
    parser.add_argument("--num-samples", type=int, default=1, help="samples per job")
    args = parser.parse_args()
    token = f"stream-bench-{secrets.token_hex(12)}"
    env = {"TEXTGEN_API_TOKENS": f"bench:{token}"}
    with tempfile.TemporaryDirectory() as scratch, \
            LocalStack(Path(scratch) / "data", port=free_port(), env=env) as stack:
        api = Client(stack.url, token=token, timeout_s=60)
        model_id = trained_model(api, scratch, args.units, args.layers)
        first_delta(api, model_id, 10)  # the worker loads the model: warm from here on
        client_s, worker_s = [], []
        for _ in range(args.runs):
            to_client, in_worker = first_delta(api, model_id, args.length, args.num_samples)
            client_s.append(to_client)
            worker_s.append(in_worker)
    print(f"{args.runs} jobs of {args.num_samples} x {args.length} tokens, "
          f"{args.layers}x{args.units} LSTM, "
          f"model loaded; running event -> first text delta, ms (goal {GOAL_MS}):")
    for name, values in (("to client", client_s), ("in worker", worker_s)):
        print(f"  {name:<9}  p50 {ms(values, 0.5):>4}  p90 {ms(values, 0.9):>4}  "
              f"max {max(values) * 1000:.0f}")
    return 0 if percentile(client_s, 0.9) * 1000 <= GOAL_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
