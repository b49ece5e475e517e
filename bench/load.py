"""Load: many owners submit a backlog at once to `make up`'s stack; is it taken fairly?

Starts the local stack (embedded Redis, gunicorn, one train and one generate worker) in a
scratch directory, trains a tiny model for each owner, then submits as fast as it can:

- the fairness run (the default): `--owners` owners submit `--jobs` generation jobs
  between them, a thread each, in `--bursts` waves (every thread waits for the others
  between waves), while one more owner submits `--train-jobs` training jobs in the same
  waves, from threads with as many submissions each;
- `--burst`: issue 7's run, one owner's `--jobs` generation jobs from `--clients` threads.

Every submission carries a token and an Idempotency-Key, as a careful client's would. It
waits until every job ended, checks that each succeeded exactly once (one `running`
status, attempt 1) and that none is missing or extra, and prints submissions per second,
p50/p99 submit latency, the longest wait of any owner's first job (submitted to started)
and the time to drain.

    .venv/bin/python -m bench.load [--owners 20] [--jobs 2000] [--train-jobs 200]
    .venv/bin/python -m bench.load --burst [--clients 20] [--jobs 200]
"""

import argparse
import os
import secrets
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from client.api_client import Client  # noqa: E402
from shared.stack.runner import LocalStack, free_port  # noqa: E402

TEXT = ("It was on a dreary night of November that I beheld the accomplishment of my toils.\n"
        "With an anxiety that almost amounted to agony, I collected the instruments of life.\n"
        ) * 30
# The smallest model that trains and samples: one short epoch, a second or so a job.
TINY = {"model": {"units": 8, "layers": 1, "embedding_dim": 8},
        "training": {"epochs": 1, "seq_length": 16, "batch_size": 64}}
_DRAIN_TIMEOUT_S = 3600
TOKEN = "load-bench-token-0123456789"  # the one owner of bench/connections.py


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency(seconds):
    return (f"p50 {percentile(seconds, 0.5) * 1000:,.0f} ms, "
            f"p99 {percentile(seconds, 0.99) * 1000:,.0f} ms")


def seconds_between(earlier, later):
    """Seconds from one ISO 8601 time of a job record to another."""
    return (datetime.fromisoformat(later.replace("Z", "+00:00"))
            - datetime.fromisoformat(earlier.replace("Z", "+00:00"))).total_seconds()


class Submissions:
    """Every submission's owner, job id and latency, from many threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.jobs = []  # (owner, kind, job id), in the order the answers came
        self.latencies = []
        self.failures = []

    def submit(self, owner, kind, call):
        began = time.monotonic()
        try:
            job = call(idempotency_key=str(uuid.uuid4()))
        except Exception as e:  # noqa: BLE001 - every failure is counted, then reported
            with self.lock:
                self.failures.append(f"{owner}: {e!r}")
            return
        with self.lock:
            self.latencies.append(time.monotonic() - began)
            self.jobs.append((owner, kind, job["id"]))


def tiny_model(api, scratch):
    """The id of a tiny model trained on the stack, for a load to generate from."""
    corpus_path = Path(scratch) / "corpus.txt"
    corpus_path.write_text(TEXT)
    trained = api.wait(api.train(api.upload_corpus(corpus_path)["id"], "default",
                                 **TINY)["id"], poll_s=0.2, timeout_s=300)
    return trained["result"]["model_id"]


def setup(stack, owners, scratch):
    """Each owner's client, corpus and (generation owners) a tiny model of their own."""
    corpus_path = Path(scratch) / "corpus.txt"
    corpus_path.write_text(TEXT)
    clients = {owner: Client(stack.url, token=token, timeout_s=60)
               for owner, token in owners.items()}
    corpora = {owner: api.upload_corpus(corpus_path)["id"] for owner, api in clients.items()}
    training = {owner: api.train(corpora[owner], "default", **TINY)["id"]
                for owner, api in clients.items() if owner != "trainer"}
    models = {owner: clients[owner].wait(job_id, poll_s=0.2, timeout_s=600)["result"]["model_id"]
              for owner, job_id in training.items()}
    return clients, corpora, models


def fairness_run(args, stack, owners, scratch):
    clients, corpora, models = setup(stack, owners, scratch)
    generators = [owner for owner in owners if owner != "trainer"]
    print(f"stack up, {len(models)} models; {len(generators)} owners submit {args.jobs} "
          f"generation jobs of {args.length} characters and 'trainer' {args.train_jobs} "
          f"training jobs, in {args.bursts} bursts", flush=True)
    shares = [(owner, args.jobs // len(generators) + (i < args.jobs % len(generators)))
              for i, owner in enumerate(generators)]
    # The trainer's jobs from as many threads as it takes to give each thread a generation
    # owner's share: one thread with all of them would bound every wave's length.
    per_thread = max(1, args.jobs // len(generators))
    threads = -(-args.train_jobs // per_thread)
    shares += [("trainer", args.train_jobs // threads + (i < args.train_jobs % threads))
               for i in range(threads)]
    wave = threading.Barrier(len(shares))
    done = Submissions()

    def owner_thread(owner, count):
        api = Client(stack.url, token=owners[owner], timeout_s=60)
        for burst in range(args.bursts):
            wave.wait()
            for _ in range(count // args.bursts + (burst < count % args.bursts)):
                if owner == "trainer":
                    done.submit(owner, "train", lambda **kw: api.train(
                        corpora[owner], "default", **TINY, **kw))
                else:
                    done.submit(owner, "generate", lambda **kw: api.generate(
                        models[owner], length=args.length, temperature=1.0, **kw))

    submit_s = run_threads([(owner_thread, share) for share in shares])
    report(args, clients, done, submit_s)
    return done


def burst_run(args, stack, owners, scratch):
    clients, _, models = setup(stack, owners, scratch)
    [(owner, model_id)] = models.items()
    print(f"stack up, model {model_id}; {args.clients} clients submit {args.jobs} "
          f"generation jobs of {args.length} characters", flush=True)
    start = threading.Barrier(args.clients)
    done = Submissions()

    def client_thread(count):
        api = Client(stack.url, token=owners[owner], timeout_s=60)
        start.wait()
        for _ in range(count):
            done.submit(owner, "generate", lambda **kw: api.generate(
                model_id, length=args.length, temperature=1.0, **kw))

    shares = [args.jobs // args.clients + (i < args.jobs % args.clients)
              for i in range(args.clients)]
    submit_s = run_threads([(client_thread, (n,)) for n in shares])
    report(args, clients, done, submit_s)
    return done


def run_threads(targets):
    threads = [threading.Thread(target=target, args=a) for target, a in targets]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - began


def report(args, clients, done, submit_s):
    submitted = len(done.jobs)
    print(f"submitted {submitted} in {submit_s:.2f} s: {submitted / submit_s:,.0f} "
          f"submissions/s; submit latency {latency(done.latencies)}", flush=True)
    kinds = {kind for _, kind, _ in done.jobs}
    for kind in sorted(kinds) if len(kinds) > 1 else ():
        of_kind = [s for (_, k, _), s in zip(done.jobs, done.latencies) if k == kind]
        print(f"  {kind}: {latency(of_kind)}")
    wait_until_drained(clients)
    records = check_each_ran_once(clients, done)
    first_created = min(job["created_at"] for job in records.values())
    for kind in ("generate", "train"):
        ended = [records[job_id]["finished_at"] for _, k, job_id in done.jobs if k == kind]
        if ended:
            print(f"{len(ended)} {kind} jobs: the last ended "
                  f"{seconds_between(first_created, max(ended)):.1f} s after the first "
                  "submission")
    first_waits = {}
    for owner, _, job_id in done.jobs:  # answers in order: an owner's first job first
        job = records[job_id]
        if owner not in first_waits and job["started_at"]:
            first_waits[owner] = seconds_between(job["created_at"], job["started_at"])
    generators = {o: s for o, s in first_waits.items() if o != "trainer"}
    if generators:
        worst = max(generators, key=generators.get)
        print(f"longest wait of an owner's first generation job: {generators[worst]:.2f} s "
              f"({worst}); median {percentile(list(generators.values()), 0.5):.2f} s")
    if "trainer" in first_waits:
        print(f"the trainer's first job waited {first_waits['trainer']:.2f} s")


def wait_until_drained(clients):
    deadline = time.monotonic() + _DRAIN_TIMEOUT_S
    for api in clients.values():
        while any(api.jobs_page(status=s, limit=1).data for s in ("queued", "running")):
            if time.monotonic() > deadline:
                raise SystemExit("jobs still queued or running after the drain timeout")
            time.sleep(0.5)


def check_each_ran_once(clients, done):
    """Every job once: succeeded, attempt 1, one `running` event; none missing or extra.
    Prints the problems; returns the records by id."""
    problems = list(done.failures)
    ids = [job_id for _, _, job_id in done.jobs]
    if len(set(ids)) != len(ids):
        problems.append("a job id was answered twice")
    by_owner = defaultdict(set)
    for owner, kind, job_id in done.jobs:
        by_owner[(owner, kind)].add(job_id)
    for (owner, kind), submitted in by_owner.items():
        listed = {job["id"] for job in clients[owner].jobs(type=kind, page_size=200)}
        if listed != submitted:
            problems.append(f"{owner}: {len(listed)} {kind} jobs listed, "
                            f"{len(submitted)} submitted")

    def check(entry):
        owner, _, job_id = entry
        api = clients[owner]
        job = api.job(job_id)
        runs = [e for e in api.all_events(job_id) if e["type"] == "status"
                and e["data"]["status"] == "running"]
        if job["status"] != "succeeded" or job["attempt"] != 1 or len(runs) != 1:
            problems.append(f"{job_id}: {job['status']}, attempt {job['attempt']}, "
                            f"{len(runs)} runs")
        return job

    with ThreadPoolExecutor(8) as pool:
        records = {job["id"]: job for job in pool.map(check, done.jobs)}
    print("every job succeeded exactly once; none lost, none duplicated, no request failed"
          if not problems else f"PROBLEMS ({len(problems)}): " + "; ".join(problems[:10]))
    done.problems = problems
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", action="store_true", help="issue 7's one-owner run")
    parser.add_argument("--owners", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=None,
                        help="generation jobs (default 2000; 200 with --burst)")
    parser.add_argument("--train-jobs", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=4)
    parser.add_argument("--clients", type=int, default=20, help="--burst: threads")
    parser.add_argument("--length", type=int, default=100, help="characters per sample")
    args = parser.parse_args()
    args.jobs = args.jobs or (200 if args.burst else 2000)
    names = ["load"] if args.burst else [f"owner-{i:02d}" for i in range(args.owners)] + [
        "trainer"]
    owners = {name: f"{name}-{secrets.token_hex(12)}" for name in names}
    env = {"TEXTGEN_API_TOKENS": ",".join(f"{n}:{t}" for n, t in owners.items())}
    with tempfile.TemporaryDirectory() as scratch, \
            LocalStack(Path(scratch) / "data", port=free_port(), env=env) as stack:
        print("API server:", " ".join(stack.commands["api"][0][1:]), flush=True)
        run = burst_run if args.burst else fairness_run
        done = run(args, stack, owners, scratch)
    return 1 if done.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
