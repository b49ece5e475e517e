"""Load: 20 clients submit 200 generation jobs at once to `make up`'s stack.

Starts the local stack (embedded Redis, gunicorn, one train and one generate worker) in a
scratch directory, trains a tiny model, then has `--clients` threads submit `--jobs`
generation jobs between them as fast as they can, and waits until every job has ended.
It checks that each job succeeded exactly once (one `running` status, attempt 1) and
that no job is missing or extra, and prints submissions per second, p50/p99 submit
latency and the time to drain the queue.

    .venv/bin/python -m bench.load [--clients 20] [--jobs 200] [--length 100]

The stack runs with TEXTGEN_MAX_ACTIVE_JOBS raised to the job count: the per-owner quota
(8 by default) would otherwise answer most of a burst from one owner with 429.
"""

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from client.api_client import Client  # noqa: E402
from client.records import JobStatus  # noqa: E402
from client.stack import LocalStack, free_port  # noqa: E402

TEXT = ("It was on a dreary night of November that I beheld the accomplishment of my toils.\n"
        "With an anxiety that almost amounted to agony, I collected the instruments of life.\n"
        ) * 30
TINY = {"model": {"units": 32, "layers": 1, "embedding_dim": 16},
        "training": {"epochs": 1, "seq_length": 32, "batch_size": 16}}
TOKEN = "load-bench-token-0123456789"


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def tiny_model(api, scratch):
    """The id of a tiny model trained on the stack, for the load to generate from."""
    corpus_path = Path(scratch) / "corpus.txt"
    corpus_path.write_text(TEXT)
    trained = api.wait(api.train(api.upload_corpus(corpus_path)["id"], "default",
                                 **TINY)["id"], poll_s=0.2, timeout_s=300)
    return trained["result"]["model_id"]


def submit_all(url, model_id, clients, jobs, length):
    """Submit `jobs` generation jobs from `clients` threads at once; (ids, latencies, s)."""
    ids, latencies, failures = [], [], []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client_thread(count):
        api = Client(url, token=TOKEN, timeout_s=60)
        start.wait()
        for _ in range(count):
            began = time.monotonic()
            try:
                job = api.generate(model_id, length=length, temperature=1.0)
            except Exception as e:  # noqa: BLE001 - every failure is counted, then reported
                with lock:
                    failures.append(repr(e))
                continue
            with lock:
                latencies.append(time.monotonic() - began)
                ids.append(job["id"])

    shares = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=client_thread, args=(n,)) for n in shares]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ids, latencies, failures, time.monotonic() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--length", type=int, default=100, help="characters per sample")
    args = parser.parse_args()
    env = {"TEXTGEN_API_TOKENS": f"load:{TOKEN}",
           "TEXTGEN_MAX_ACTIVE_JOBS": str(args.jobs + 10)}
    with tempfile.TemporaryDirectory() as scratch, \
            LocalStack(Path(scratch) / "data", port=free_port(), env=env) as stack:
        api = Client(stack.url, token=TOKEN, timeout_s=60)
        model_id = tiny_model(api, scratch)
        print(f"stack up, model {model_id}; {args.clients} clients submit {args.jobs} "
              f"generation jobs of {args.length} characters", flush=True)

        started = time.monotonic()
        ids, latencies, failures, submit_s = submit_all(stack.url, model_id, args.clients,
                                                        args.jobs, args.length)
        pending = set(ids)
        while pending:
            for job_id in list(pending):
                if JobStatus(api.job(job_id)["status"]).is_terminal:
                    pending.discard(job_id)
            time.sleep(0.2)
        drain_s = time.monotonic() - started

        problems = list(failures)
        if len(set(ids)) != len(ids):
            problems.append("a job id was answered twice")
        listed = [job["id"] for job in api.jobs(type="generate", page_size=200)]
        if sorted(listed) != sorted(ids):
            problems.append(f"{len(listed)} generation jobs listed, {len(ids)} submitted")
        for job_id in ids:
            job = api.job(job_id)
            runs = [e for e in api.events(job_id)[0] if e["type"] == "status"
                    and e["data"]["status"] == "running"]
            if job["status"] != "succeeded" or job["attempt"] != 1 or len(runs) != 1:
                problems.append(f"{job_id}: {job['status']}, attempt {job['attempt']}, "
                                f"{len(runs)} runs")

    print(f"submitted {len(ids)}/{args.jobs} in {submit_s:.2f} s: "
          f"{len(ids) / submit_s:,.0f} submissions/s; submit latency "
          f"p50 {percentile(latencies, 0.5) * 1000:,.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:,.0f} ms; "
          f"all done {drain_s:.1f} s after the first submission")
    print("every job succeeded exactly once; none lost, none duplicated, no request failed"
          if not problems else f"PROBLEMS ({len(problems)}): " + "; ".join(problems[:10]))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
