"""Abuse: every adversary of issue 15 at once, and what a second owner feels meanwhile.

Starts `make up`'s stack (embedded Redis, the API under gunicorn, one train and one
generate worker) in a scratch directory with two owners' tokens, trains tiny models, then
for `--seconds`, all at once:

- a flood: owner "flood" submits generation jobs from `--flood-threads` threads and
  training jobs from one more, as fast as it can, ignoring Retry-After: once it holds
  TEXTGEN_MAX_QUEUED_JOBS (the default, 1000) it gets 429s, which is correct, and counted;
- `--streams` event streams held open by "flood" on its own queued jobs, each read as it
  comes and opened again on another job when its job ends (the stack runs with
  TEXTGEN_MAX_STREAMS_PER_OWNER raised to fit them: the default is 100);
- `--downloads` downloads of a 500 MB model of "flood" (a sparse synthetic model.keras, as
  tests/test_downloads.py makes), half the file and half the zip, each started again as
  soon as it ends;
- hostile webhook receivers (tests/webhook_receiver.py) on every flood job: one streaming
  an endless body, one never answering (TEXTGEN_WEBHOOK_ALLOW_HOSTS=127.0.0.1).

The adversaries run in processes of their own (spawned: no TensorFlow, and not our GIL),
so the victim's figures are the service's, not this script's. Meanwhile owner "victim"
submits a job every `--every` seconds (every 10th a training job if its last one ended,
the rest generation; each with a webhook to a well-behaved receiver) and polls its latest
job's status and the health endpoint back to back. It prints the victim's submit, status
and health p50/p99, its jobs' start delay (queued to running: with fair turns, the next
free slot) and run time, its webhooks' delivery delay; the API's RSS growth and Redis'
connected_clients; and every party's count of 429s and 5xx. `--linger` makes the streams'
client a hostile one that never hangs up on a stream that ended.

    .venv/bin/python -m bench.abuse [--seconds 60] [--streams 500] [--downloads 4]
"""

import argparse
import json
import multiprocessing
import os
import queue
import secrets
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from bench.adversaries import MB, Tally, downloads, flood, streams
from bench.connections import connected_clients, server_errors, threads_and_rss_mb
from bench.load import TEXT, TINY, percentile, seconds_between
from client.api_client import Client
from shared.stack.runner import LocalStack, free_port
from tests.held_connections import api_worker_pids
from tests.webhook_receiver import Receiver

MODEL_BYTES = 500 * MB  # the "large download"
# The victim's every 10th job trains (the rest generate), when its last training ended.
_TRAIN_EVERY = 10
_POLL_PAUSE_S = 0.05  # between the victim's status polls: a client polling fast
_SAMPLE_EVERY_S = 0.5  # RSS and connected_clients
_END_TIMEOUT_S = 120.0  # after the run, how long the victim's last jobs may take to end


# --- the victim, in this process ---------------------------------------------------------

class Arrivals(list):
    """A Receiver's deliveries, each stamped with the time it arrived."""

    def append(self, delivery):
        super().append((time.time(), delivery))


def victim(url, token, ids, every_s, hook_url, seconds, tally):
    """Submit a job every `every_s` seconds and poll the latest one's status and health
    back to back (another client: a session is not shared between threads), for
    `seconds`; returns the submitted job ids."""
    api, poller_api = (Client(url, token=token, timeout_s=60) for _ in range(2))
    jobs = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            if jobs:
                tally.call("status", lambda: poller_api.job(jobs[-1]))
            tally.call("health", poller_api.health)
            stop.wait(_POLL_PAUSE_S)

    poller = threading.Thread(target=poll)
    poller.start()
    ends = time.monotonic() + seconds
    n = 0
    training = None  # the victim's last training job
    while time.monotonic() < ends:
        n += 1
        # A training only once the last has ended: its start delay is then the flood's
        # doing (a turn), never the victim's own trainings queued before it.
        if n % _TRAIN_EVERY == 0 and (training is None or api.job(training)["finished_at"]):
            job = tally.call("submit", lambda: api.train(
                ids["victim_corpus"], "default", **TINY, webhook=hook_url,
                webhook_events=["completed"]))
            training = job["id"] if job else training
        else:
            job = tally.call("submit", lambda: api.generate(
                ids["victim_model"], length=100, webhook=hook_url,
                webhook_events=["completed"]))
        if job:
            jobs.append(job["id"])
        time.sleep(max(0.0, min(every_s, ends - time.monotonic())))
    stop.set()
    poller.join()
    return jobs


def timings(api, job_ids):
    """Each job's type, seconds from created to started and from started to finished
    (None: not yet), waiting up to _END_TIMEOUT_S for the last ones to end."""
    deadline = time.monotonic() + _END_TIMEOUT_S
    while True:
        records = [api.job(job_id) for job_id in job_ids]
        if all(job["finished_at"] for job in records) or time.monotonic() > deadline:
            return [(job["type"], between(job["created_at"], job["started_at"]),
                     between(job["started_at"], job["finished_at"])) for job in records]
        time.sleep(0.5)


def between(earlier, later):
    return seconds_between(earlier, later) if earlier and later else None


# --- the run ------------------------------------------------------------------------------

def prepare(stack, tokens, scratch):
    """Corpora and tiny models for both owners, and flood's 500 MB model (a trained tiny
    one whose model.keras is then made a sparse 500 MB file: no disk, reads as zeros)."""
    from shared.stores.artifacts import open_artifact_store  # imported only here: server code
    from shared.runtime.settings import Settings

    corpus_path = Path(scratch) / "corpus.txt"
    corpus_path.write_text(TEXT)
    ids = {}
    for owner in ("flood", "victim"):
        api = Client(stack.url, token=tokens[owner], timeout_s=60)
        ids[f"{owner}_corpus"] = api.upload_corpus(corpus_path)["id"]
        trained = [api.train(ids[f"{owner}_corpus"], "default", **TINY)["id"]
                   for _ in range(2 if owner == "flood" else 1)]
        done = [api.wait(job_id, poll_s=0.2, timeout_s=300) for job_id in trained]
        ids[f"{owner}_model"] = done[0]["result"]["model_id"]
        if owner == "flood":
            large = done[1]  # the model's files are its training attempt's
            ids["large_model"] = large["result"]["model_id"]
    store = open_artifact_store(Settings(redis_url=stack.redis_url, data_dir=stack.data_dir))
    os.truncate(store.model_file(ids["large_model"], large["attempt"], "model.keras")
                .local_path(), MODEL_BYTES)
    return ids


def table_row(name, values):
    """`name` and the values' count, p50, p99 and max in ms, in aligned columns."""
    if not values:
        return f"{name:<24} none"
    return (f"{name:<24} n={len(values):<6} p50 {percentile(values, 0.5) * 1000:8,.1f} ms"
            f"   p99 {percentile(values, 0.99) * 1000:8,.1f} ms"
            f"   max {max(values) * 1000:8,.0f} ms")


def outcome_line(party, outcomes):
    order = ("ok", "429", "5xx", "other 4xx", "no answer")
    return f"{party:<24} " + "  ".join(f"{key} {outcomes.get(key, 0):,}" for key in order)


def run(args, stack, tokens, scratch):
    ids = prepare(stack, tokens, scratch)
    print(f"stack up; models {ids['flood_model']} (flood), {ids['victim_model']} (victim), "
          f"{ids['large_model']} (500 MB); {os.getloadavg()[0]:.2f} load before", flush=True)
    good = Receiver()
    good.deliveries = Arrivals()
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    adversaries = [
        context.Process(target=flood, args=(stack.url, tokens["flood"], ids,
                                            args.flood_threads, stop, results)),
        context.Process(target=streams, args=(stack.url, tokens["flood"], args.streams,
                                              args.linger, stop, results)),
        context.Process(target=downloads, args=(stack.url, tokens["flood"], ids["large_model"],
                                                args.downloads, stop, results))]
    api_pids = [stack.processes["api"].pid, *api_worker_pids(stack)]
    rss_before = threads_and_rss_mb(api_pids)[1]
    clients_before = connected_clients(stack)
    samples, sampling = [], threading.Event()

    def sample():
        while not sampling.wait(_SAMPLE_EVERY_S):
            samples.append((threads_and_rss_mb(api_pids)[1], connected_clients(stack),
                            os.getloadavg()[0]))

    sampler = threading.Thread(target=sample)
    sampler.start()
    for process in adversaries:
        process.start()
    tally = Tally()
    api = Client(stack.url, token=tokens["victim"], timeout_s=60)
    try:
        time.sleep(args.warmup)  # the flood fills its queue, the streams open
        victim_jobs = victim(stack.url, tokens["victim"], ids, args.every, good.url,
                             args.seconds, tally)
        delays = timings(api, victim_jobs)
        flood_api = Client(stack.url, token=tokens["flood"], timeout_s=60)
        flood_trainings = [between(job["started_at"], job["finished_at"]) for job in
                           flood_api.jobs_page(status="succeeded", type="train", limit=50).data]
    finally:
        stop.set()
        reports = {}
        while len(reports) < len(adversaries):
            try:
                reports.update([results.get(timeout=60)])
            except queue.Empty:  # an adversary died: its figures are missing, said below
                break
        for process in adversaries:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
        sampling.set()
        sampler.join()
        good.close()
    report(args, tally, delays, flood_trainings, good, reports, rss_before, clients_before,
           samples, stack)


def report(args, tally, delays, flood_trainings, good, reports, rss_before, clients_before,
           samples, stack):
    print(f"\n{args.seconds:.0f} s of abuse after {args.warmup:.0f} s of warm-up; "
          f"load average over the run: {min(s[2] for s in samples):.1f} to "
          f"{max(s[2] for s in samples):.1f} (2 cores)")
    print("victim:")
    for what in ("submit", "status", "health"):
        print("  " + table_row(what, tally.latencies.get(what, [])))
    for kind in ("generate", "train"):
        for column, what in ((1, "start delay"), (2, "run time")):
            ended = [t[column] for t in delays if t[0] == kind and t[column] is not None]
            missing = sum(1 for t in delays if t[0] == kind and t[column] is None)
            print("  " + table_row(f"{what}, {kind}", ended)
                  + (f"   ({missing} not {'started' if column == 1 else 'ended'})"
                     if missing else ""))
    print("  " + table_row("run time, flood's train", [s for s in flood_trainings if s]))
    arrivals = [at - time_of(body) for at, (_, body, _) in good.deliveries]
    print("  " + table_row("webhook delivery", arrivals))
    print("requests by outcome:")
    print("  " + outcome_line("victim", tally.outcomes))
    missing = {"flood", "streams", "downloads"} - reports.keys()
    if missing:
        print(f"  no figures from {', '.join(sorted(missing))}: the process died (see above)")
    else:
        adversaries_report(args, reports)
    rss_peak = max(s[0] for s in samples)
    print(f"API RSS (master + workers): {rss_before:,.0f} MB before, peak {rss_peak:,.0f} MB "
          f"(+{rss_peak - rss_before:,.0f} MB); Redis connected_clients {clients_before} "
          f"before, peak {max(s[1] for s in samples)}")
    for line in server_errors(stack)[:5]:
        print("server:", line)


def adversaries_report(args, reports):
    flooded, held = reports["flood"], reports["streams"]
    print("  " + outcome_line("flood submissions", flooded["outcomes"]))
    print("  " + outcome_line("flood streams opened", held["outcomes"])
          + f"  ended {held['outcomes'].get('ended', 0):,}")
    print("  " + outcome_line("flood downloads", reports["downloads"]["outcomes"]))
    print(f"streams held once all were open: median {held['held_median']}, min "
          f"{held['held_min']} of {args.streams} (0: never all open; opening p99 "
          f"{(held['open_p99_s'] or 0) * 1000:,.0f} ms); downloads "
          f"{reports['downloads']['mb_per_s']:,.0f} MB/s in all; hostile receivers: "
          f"{flooded['endless_cut']} endless bodies cut (at most "
          f"{flooded['endless_max_bytes'] / 1024:,.0f} KiB sent to one), "
          f"{flooded['silent_connections']} silent connections")


def time_of(body):
    """When the delivery's event happened: its body's timestamp, as a Unix time."""
    stamp = json.loads(body)["timestamp"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the victim's run")
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="seconds of abuse before the victim starts")
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--downloads", type=int, default=4)
    parser.add_argument("--flood-threads", type=int, default=4)
    parser.add_argument("--linger", action="store_true", help=(
        "the streams' client never hangs up on a stream that ended (a hostile client)"))
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep the stack's logs there (default: removed with the stack)")
    parser.add_argument("--every", type=float, default=1.0, help="the victim's submissions")
    args = parser.parse_args()
    tokens = {owner: f"{owner}-{secrets.token_hex(12)}" for owner in ("flood", "victim")}
    env = {"TEXTGEN_API_TOKENS": ",".join(f"{n}:{t}" for n, t in tokens.items()),
           # Room for the streams, and for the server to count a closed one a moment longer.
           "TEXTGEN_MAX_STREAMS_PER_OWNER": str(args.streams + 50),
           "TEXTGEN_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}
    with tempfile.TemporaryDirectory() as scratch, \
            LocalStack(Path(scratch) / "data", port=free_port(), env=env,
                       log_dir=args.log_dir) as stack:
        run(args, stack, tokens, scratch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
