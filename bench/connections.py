"""Long connections against short ones: submissions and health while streams are held.

Starts the local stack (embedded Redis, the API, one train and one generate worker) in a
scratch directory, trains a tiny model, then pauses the generate worker (SIGSTOP) so that
generation jobs stay queued, and holds `--streams` event streams on queued jobs and
`--waits` `POST /v1/generate` requests with `Prefer: wait=60`, all open at once. While they
are held it times `--submits` job submissions (from 4 client threads) and health checks
(one thread, back to back), and prints p50/p99 of each (and of health checks alone before
anything is held), Redis' connected_clients and the API's threads and memory. Then it
cancels every job and lets the worker go on.

    .venv/bin/python -m bench.connections [--streams 500] [--waits 100] [--submits 300]
        [--server gthread:N|gevent:N]

`--server` serves the API with gunicorn's gthread workers of N threads each, or gevent
workers of N connections each (the API's own command otherwise), to compare them. gevent
is not in requirements.txt (`pip install gevent` first): it breaks an S3 artifact store
(docs/serving.md), though not the local one this bench uses.
"""

import argparse
import os
import signal
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

import shared.stack.runner as stack_module
from bench.load import TOKEN, percentile, tiny_model
from client.api_client import Client
from shared.stack.runner import LocalStack, free_port
from tests.held_connections import HeldRequests, api_worker_pids, port_of, tcp_connections_to

_SUBMIT_THREADS = 4
_OPEN_TIMEOUT_S = 10.0  # a stream whose 200 takes longer counts as not served
_STREAMS_PER_JOB = 5
_HEALTH_ALONE = 300  # health checks back to back before anything is held


def server_command(kind, n):
    """gunicorn with 2 workers of `kind`: gthread with n threads, or gevent with n
    connections each."""
    option = "--threads" if kind == "gthread" else "--worker-connections"

    def command(python, port):
        return [python, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                "--worker-class", kind, option, str(n), "api.wsgi:app"]
    return command


def threads_and_rss_mb(pids):
    threads = rss_kb = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        if not status.exists():
            continue  # a worker that gunicorn restarted: its successor is not counted
        for line in status.read_text().splitlines():
            if line.startswith("Threads:"):
                threads += int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss_kb += int(line.split()[1])
    return threads, rss_kb / 1024


def queued(stack):
    """How many jobs are queued (-1 when the API does not answer within a few seconds)."""
    try:
        page = requests.get(stack.url + "/v1/jobs?status=queued&limit=200", timeout=5,
                            headers={"Authorization": f"Bearer {TOKEN}"}).json()
    except requests.RequestException:
        return -1
    return len(page["data"]) + (1 if page["has_more"] else 0)


def server_errors(stack):
    """gunicorn's own error lines (a worker killed for missing its heartbeat, ...)."""
    lines = (stack.log_dir / "api.log").read_text(errors="replace").splitlines()
    return [line for line in lines if "[CRITICAL]" in line or "[ERROR]" in line]


def connected_clients(stack):
    return redis.Redis.from_url(stack.redis_url).info("clients")["connected_clients"]


def timed(call):
    began = time.monotonic()
    try:
        call()
    except Exception as e:  # noqa: BLE001 - a failure is a figure here: counted, not raised
        return None, repr(e)
    return time.monotonic() - began, None


def measure(url, model_id, submits, stop):
    """Submissions from _SUBMIT_THREADS threads, health checks from one, until done."""
    api = Client(url, token=TOKEN, timeout_s=30)
    submit_s, health_s, failures = [], [], []

    def health_loop():
        session = requests.Session()
        while not stop.is_set():
            took, error = timed(lambda: session.get(url + "/v1/health", timeout=30)
                                .raise_for_status())
            (health_s.append(took) if error is None else failures.append(error))

    def submit(_):
        took, error = timed(lambda: api.generate(model_id, length=20))
        (submit_s.append(took) if error is None else failures.append(error))

    checker = threading.Thread(target=health_loop)
    checker.start()
    with ThreadPoolExecutor(_SUBMIT_THREADS) as pool:
        list(pool.map(submit, range(submits)))
    stop.set()
    checker.join()
    return submit_s, health_s, failures


def figures(name, values):
    if not values:
        return f"{name}: none answered"
    return (f"{name}: {len(values)} answered, p50 {percentile(values, 0.5) * 1000:,.1f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:,.1f} ms, "
            f"max {max(values) * 1000:,.0f} ms, mean {statistics.mean(values) * 1000:,.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--waits", type=int, default=100)
    parser.add_argument("--submits", type=int, default=300)
    parser.add_argument("--server", default=None, help=(
        "gthread:N (threads) or gevent:N (connections) per worker, to compare; default: "
        "the API's own command"))
    args = parser.parse_args()
    if args.server:
        kind, _, n = args.server.partition(":")
        if kind not in ("gthread", "gevent") or not n.isdigit():
            parser.error("--server takes gthread:N or gevent:N")
        stack_module.api_command = server_command(kind, int(n))
    many = str(10 * (args.streams + args.waits + args.submits))
    env = {"TEXTGEN_API_TOKENS": f"conn:{TOKEN}", "TEXTGEN_MAX_ACTIVE_JOBS": many,
           "TEXTGEN_MAX_QUEUED_JOBS": many, "TEXTGEN_MAX_STREAMS_PER_OWNER": many}
    with tempfile.TemporaryDirectory() as scratch, \
            LocalStack(Path(scratch) / "data", port=free_port(), env=env) as stack:
        api = Client(stack.url, token=TOKEN, timeout_s=60)
        model_id = tiny_model(api, scratch)
        generate_worker = stack.processes["worker-generate"]
        os.killpg(generate_worker.pid, signal.SIGSTOP)  # jobs stay queued from here on
        held = HeldRequests(stack.url, timeout_s=_OPEN_TIMEOUT_S)
        try:
            report(args, stack, api, model_id, held)
        finally:
            held.close()
            for line in server_errors(stack)[:5]:
                print("server:", line)
            for job in api.jobs(status="queued", page_size=200):
                api.cancel(job["id"])
            os.killpg(generate_worker.pid, signal.SIGCONT)


def report(args, stack, api, model_id, held):
    print(f"stack up ({' '.join(stack.commands['api'][0][3:])}); model {model_id}",
          flush=True)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    session = requests.Session()
    alone = [took for took, error in (timed(lambda: session.get(
        stack.url + "/v1/health", timeout=30)) for _ in range(_HEALTH_ALONE)) if not error]
    print(figures("health alone, nothing held", alone), flush=True)
    clients_before = connected_clients(stack)
    jobs = [api.generate(model_id, length=20)["id"]
            for _ in range(-(-args.streams // _STREAMS_PER_JOB))]
    began = time.monotonic()
    opened, refused = [], []
    for n in range(args.streams):
        try:
            opened.append(held.stream(jobs[n // _STREAMS_PER_JOB], TOKEN))
        except (OSError, AssertionError) as e:
            refused.append(repr(e))
            if len(refused) >= 3:  # the server is full: the rest would wait as long
                break
    open_s = time.monotonic() - began
    waits = [held.send("POST", "/v1/generate", {**auth, "Prefer": "wait=60"},
                       {"model_id": model_id, "length": 20}) for _ in range(args.waits)]
    stored_by = time.monotonic() + _OPEN_TIMEOUT_S  # a server that is full never stores them
    while time.monotonic() < stored_by and queued(stack) < len(jobs) + len(waits):
        time.sleep(0.1)  # until every wait's job is stored: from then on they wait
    print(f"held: {len(opened)}/{args.streams} event streams (opened in {open_s:.1f} s"
          f"{', ' + str(len(refused)) + ' not served' if refused else ''}), "
          f"{len(waits)} Prefer: wait requests", flush=True)

    stop = threading.Event()
    pids = [stack.processes["api"].pid, *api_worker_pids(stack)]
    samples = []
    sampler = threading.Thread(target=lambda: samples.extend(
        threads_and_rss_mb(pids) for _ in iter(lambda: stop.wait(0.5), True)))
    sampler.start()
    began = time.monotonic()
    submit_s, health_s, failures = measure(stack.url, model_id, args.submits, stop)
    took_s = time.monotonic() - began
    sampler.join()
    clients = connected_clients(stack)
    api_connections = tcp_connections_to(pids, port_of(stack.redis_url))
    still_held = len(held.unanswered(waits))
    print(figures("submit", submit_s))
    print(figures("health", health_s))
    print(f"{len(submit_s) / took_s:,.0f} submissions/s over {took_s:.1f} s; "
          f"{still_held}/{len(waits)} waits still held at the end; "
          f"{len(failures)} requests failed{': ' + failures[0] if failures else ''}")
    threads, rss_mb = max(samples) if samples else threads_and_rss_mb(pids)
    print(f"Redis connected_clients {clients} (whole stack; {clients_before} before the "
          f"streams and waits), {api_connections} of them the API's; API (master + workers): "
          f"{threads} threads, {rss_mb:,.0f} MB RSS")


if __name__ == "__main__":
    raise SystemExit(main())
