"""The adversaries of bench/abuse.py, each run in a process of its own: one owner's flood
of submissions with hostile webhook receivers, event streams held on its queued jobs, and
large downloads. Each runs until `stop` is set, then puts its figures on `results`.
"""

import functools
import queue
import selectors
import threading
import time
from collections import Counter

import requests

from bench.load import TINY, percentile
from client.api_client import Client
from client.errors import ApiError, ClientError
from tests.held_connections import HeldRequests, read_status
from tests.webhook_receiver import HostileReceiver

MB = 1024 * 1024
_STREAM_OPEN_TIMEOUT_S = 10.0
# Opening 500 streams one at a time takes longer than the flood's generation jobs last
# under load (~70 ms an open on a loaded machine, 2026-12-01): open from a few threads.
_STREAM_OPENERS = 4
_STREAMS_PER_JOB = 5  # 500 streams need 100 queued jobs


class Tally:
    """One party's requests, from many threads: latencies of the answered by what was
    asked, and counts by outcome (ok, 429, 5xx, other 4xx, no answer)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = {}
        self.outcomes = Counter()

    def call(self, what, fn):
        began = time.monotonic()
        try:
            result = fn()
        except ApiError as e:
            self.count(outcome_of(e.status))
            return None
        except (ClientError, requests.RequestException):
            self.count("no answer")
            return None
        with self.lock:
            self.latencies.setdefault(what, []).append(time.monotonic() - began)
        self.count("ok")
        return result

    def count(self, outcome, n=1):
        with self.lock:
            self.outcomes[outcome] += n


def outcome_of(status):
    if status is None:
        return "no answer"
    return "ok" if status < 400 else "429" if status == 429 else (
        "5xx" if status >= 500 else "other 4xx")


def flood(url, token, ids, threads, stop, results):
    """Generation jobs from `threads` threads and training jobs from one, until `stop`,
    every one with a hostile receiver's webhook."""
    endless, silent = HostileReceiver("endless"), HostileReceiver("silent")
    hooks = [endless.url, silent.url]
    tally = Tally()

    def generate(n):
        api = Client(url, token=token, timeout_s=60)
        while not stop.is_set():
            n += 1
            tally.call("generate", functools.partial(
                api.generate, ids["flood_model"], length=100, webhook=hooks[n % 2],
                webhook_events=["completed"]))

    def train():
        api = Client(url, token=token, timeout_s=60)
        n = 0
        while not stop.is_set():
            n += 1
            tally.call("train", functools.partial(
                api.train, ids["flood_corpus"], "default", **TINY, webhook=hooks[n % 2],
                webhook_events=["epoch_end", "completed"]))

    workers = [threading.Thread(target=generate, args=(n,)) for n in range(threads)]
    workers.append(threading.Thread(target=train))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    endless.close()
    silent.close()
    results.put(("flood", {"outcomes": dict(tally.outcomes),
                           "endless_cut": len(endless.bytes_sent),
                           "endless_max_bytes": max(endless.bytes_sent, default=0),
                           "silent_connections": silent.connections}))


def streams(url, token, count, linger, stop, results):
    """`count` event streams on the owner's queued jobs, opened again on another queued
    job when one ends (its job did). A few threads open them, one more reads every open
    stream and hangs up at once on those that ended (`linger`: never), as a polite client
    does: gunicorn waits up to 2 s on a closing connection until the client hangs up too,
    on plain gthread in its main loop, stalling the API for everyone (bench/README.md)."""
    api = Client(url, token=token, timeout_s=30)
    held = HeldRequests(url, timeout_s=_STREAM_OPEN_TIMEOUT_S)
    outcomes, opened_s, held_counts = Counter(), [], []
    selector = selectors.DefaultSelector()
    opened = queue.SimpleQueue()  # the openers' new sockets, for the reader to register
    lock = threading.Lock()
    slots = threading.Semaphore(count)  # one per stream to hold: taken to open, given back
    # when the stream ends or would not open
    candidates = []

    def open_one():
        if not candidates:  # taken from the end: the newest training jobs first, as they
            # stay queued longest (one worker runs the flood's trainings a few s each)
            queued = [job["id"] for kind in ("generate", "train") for job in sorted(
                api.jobs(status="queued", type=kind, page_size=200),
                key=lambda job: job["created_at"])]
            candidates.extend(job_id for job_id in queued for _ in range(_STREAMS_PER_JOB))
        try:
            job_id = candidates.pop()
        except IndexError:  # nothing queued yet (or another opener took the last)
            time.sleep(0.1)
            slots.release()
            return
        began = time.monotonic()
        sock = held.send("GET", f"/v1/jobs/{job_id}/events",
                         {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
        try:
            status = read_status(sock, _STREAM_OPEN_TIMEOUT_S)
        except OSError:
            status = None
        with lock:
            outcomes[outcome_of(status)] += 1
        if status == 200:
            opened_s.append(time.monotonic() - began)
            sock.setblocking(False)
            opened.put(sock)
        else:
            sock.close()
            slots.release()

    def read():
        while not stop.is_set():
            while not opened.empty():
                selector.register(opened.get(), selectors.EVENT_READ)
            if held_counts or len(selector.get_map()) == count:  # once all were open
                held_counts.append(len(selector.get_map()))
            for key, _ in selector.select(timeout=0.05):
                try:
                    ended = not key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    ended = True
                if ended:
                    with lock:
                        outcomes["ended"] += 1
                    selector.unregister(key.fileobj)
                    if not linger:  # --linger: a hostile client keeps it (held.close())
                        key.fileobj.close()
                    slots.release()

    def open_streams():
        while not stop.is_set():
            if not slots.acquire(timeout=0.05):
                continue
            try:
                open_one()
            except (ClientError, OSError):  # the listing, or a connection, failed: counted
                slots.release()
                with lock:
                    outcomes["no answer"] += 1

    reader = threading.Thread(target=read)
    openers = [threading.Thread(target=open_streams) for _ in range(_STREAM_OPENERS)]
    for thread in (reader, *openers):
        thread.start()
    for thread in openers:
        thread.join()
    reader.join()
    held.close()
    results.put(("streams", {"outcomes": dict(outcomes),
                             "held_min": min(held_counts, default=0),
                             "held_median": percentile(held_counts, 0.5) if held_counts else 0,
                             "open_p99_s": percentile(opened_s, 0.99) if opened_s else None}))


def downloads(url, token, model_id, count, stop, results):
    """`count` downloads of the model at once (half its model.keras, half its zip), each
    started again when it ends, until `stop`."""
    tally, received = Tally(), Counter()
    paths = [f"/v1/models/{model_id}/files/model.keras", f"/v1/models/{model_id}/download"]

    def download(path):
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        while not stop.is_set():
            try:
                with session.get(url + path, stream=True, timeout=60) as response:
                    if response.status_code != 200:
                        tally.count(outcome_of(response.status_code))
                        continue
                    for chunk in response.iter_content(MB):
                        received["bytes"] += len(chunk)
                        if stop.is_set():
                            break
                    else:
                        tally.count("ok")
            except requests.RequestException:
                tally.count("no answer")

    began = time.monotonic()
    threads = [threading.Thread(target=download, args=(paths[n % 2],)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(("downloads", {"outcomes": dict(tally.outcomes),
                               "mb_per_s": received["bytes"] / MB / (time.monotonic() - began)}))
