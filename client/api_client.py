"""The Python client of the textgen HTTP API: one method per endpoint, plus upload with
reuse, wait with back-off and a live, reconnecting event stream.

Imports nothing of the server (no shared/, api/, worker/, Redis or TensorFlow), so it runs
on any machine that reaches the API. Answers are the JSON the API sent, typed by
client/records.py; a problem answer raises ApiError with its `code`.

    api = Client("http://127.0.0.1:8000", token="tg_...")
    corpus = api.upload("book.txt")              # the same bytes again: the same corpus
    job = api.wait(api.train(corpus["id"], training={"epochs": 5})["id"])
    gen = api.generate(job["result"]["model_id"], prompt="The ", wait_s=30)
    api.wait(gen["id"])
    print(api.samples(gen["id"])[0]["text"])
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from client.errors import ApiError, ConnectionFailedError, WaitTimeoutError
from client.records import JobStatus, Page, SweepStatus, is_final, is_sweep_final
from client.sse import parse

_CHUNK_BYTES = 1 << 20  # read at a time when hashing a file or saving a download
# The server sends a heartbeat comment every 15 s (api/event_stream.py): a stream silent
# for four of them is dead, even if the socket does not say so.
_STREAM_READ_TIMEOUT_S = 60.0
_STREAM_RETRIES = 6  # reconnections in a row without an event before giving up
_STREAM_BACKOFF_S = (0.5, 8.0)  # first and longest pause between reconnections
_MAX_PREFER_WAIT_S = 60  # the API's own cap on Prefer: wait=N
# A server closes an idle keep-alive connection as it likes (gunicorn after 2 s, about
# wait()'s longest pause), and a request sent on it just then gets no answer at all. A GET
# changes nothing, so it is sent once more; other methods are not (the server may have
# acted on them), and the connection is not retried (nothing listening stays an error).
_RETRY_READS = Retry(total=None, connect=0, read=1, status=0, other=0, redirect=0,
                     allowed_methods=frozenset({"GET", "HEAD"}))


def _given(**fields):
    """The fields the caller set: the rest is left to the server's defaults."""
    return {name: value for name, value in fields.items() if value is not None}


class Client:
    def __init__(self, base_url, token=None, timeout_s=30.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s  # connect, and each read of an ordinary request
        self.http = requests.Session()
        # The environment's proxy and CA bundle, read once: left to requests (trust_env),
        # they are read again on every request, a walk of os.environ and a look for
        # ~/.netrc that took a sixth of the client's CPU in bench/load.py, and a ~/.netrc
        # entry for the server's host would replace the bearer token with its password.
        self.http.proxies = requests.utils.get_environ_proxies(self.base_url)
        self.http.verify = (os.environ.get("REQUESTS_CA_BUNDLE")
                            or os.environ.get("CURL_CA_BUNDLE") or True)
        self.http.trust_env = False
        for prefix in ("http://", "https://"):
            self.http.mount(prefix, HTTPAdapter(max_retries=_RETRY_READS))
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    # --- plumbing ----------------------------------------------------------------------

    def _send(self, method, path, *, idempotency_key=None, headers=None, **kwargs):
        headers = dict(headers or {})
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        kwargs.setdefault("timeout", self.timeout_s)
        try:
            response = self.http.request(method, self.base_url + path, headers=headers,
                                         **kwargs)
        except requests.RequestException as e:
            raise ConnectionFailedError(
                f"cannot reach textgen at {self.base_url} ({type(e).__name__}); is it "
                "running? (textgen up, or --url / TEXTGEN_URL)") from e
        _raise_for_problem(response)
        return response

    def _call(self, method, path, **kwargs):
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def _pages(self, path, params, page_size):
        """Every item of a listing, fetching page after page as the caller iterates."""
        after = None
        while True:
            page = Page.of(self._call("GET", path, params=_given(
                **params, limit=page_size, after=after)))
            yield from page.data
            if not page.has_more:
                return
            after = page.next

    # --- system ------------------------------------------------------------------------

    def health(self):
        return self._call("GET", "/v1/health")

    def presets(self):
        """The training presets: name, description and full spec of each."""
        return self._call("GET", "/v1/presets")["data"]

    def whoami(self):
        """Your owner name, the quotas that apply to you and what you use of them."""
        return self._call("GET", "/v1/whoami")

    # --- corpora -----------------------------------------------------------------------

    def upload(self, path, name=None):
        """The corpus of this file: one uploaded before with the same bytes, else a new one."""
        return self.find_upload(path) or self.upload_corpus(path, name)

    def find_upload(self, path):
        """Your newest corpus uploaded as exactly the bytes of `path`, or None."""
        page = self.corpora_page(upload_sha256=file_sha256(path), limit=1)
        return page.data[0] if page.data else None

    def upload_corpus(self, path, name=None, *, idempotency_key=None):
        """POST /v1/corpora: always a new corpus, whatever was uploaded before."""
        path = Path(path)
        with open(path, "rb") as f:
            return self._call("POST", "/v1/corpora", files={"file": (path.name, f)},
                              data={"name": name or path.name},
                              idempotency_key=idempotency_key)

    def gutenberg_corpus(self, ebook, name=None, *, idempotency_key=None):
        """A Project Gutenberg book by number, fetched and stripped by the server."""
        return self._call("POST", "/v1/corpora", json=_given(gutenberg_id=ebook, name=name),
                          idempotency_key=idempotency_key)

    def corpus(self, corpus_id):
        return self._call("GET", f"/v1/corpora/{corpus_id}")

    def corpora_page(self, *, after=None, limit=None, upload_sha256=None):
        return Page.of(self._call("GET", "/v1/corpora", params=_given(
            after=after, limit=limit, upload_sha256=upload_sha256)))

    def corpora(self, *, upload_sha256=None, page_size=100):
        """Every corpus of yours, newest first (an iterator: pages are fetched as needed)."""
        return self._pages("/v1/corpora", {"upload_sha256": upload_sha256}, page_size)

    def delete_corpus(self, corpus_id):
        self._call("DELETE", f"/v1/corpora/{corpus_id}")

    # --- jobs --------------------------------------------------------------------------

    def train(self, corpus_id, preset="default", *, preprocessing=None, model=None,
              training=None, init_from_model=None, resources=None, webhook=None,
              webhook_events=None, idempotency_key=None):
        """Submit a training job; the sections override the preset's fields."""
        body = {"corpus_id": corpus_id, "preset": preset, **_given(
            preprocessing=preprocessing, model=model, training=training,
            init_from_model=init_from_model, resources=resources, webhook=webhook,
            webhook_events=webhook_events)}
        return self._call("POST", "/v1/train", json=body, idempotency_key=idempotency_key)

    def generate(self, model_id, *, prompt=None, length=None, temperature=None, top_k=None,
                 top_p=None, num_samples=None, seed=None, stop=None, webhook=None,
                 webhook_events=None, wait_s=None, idempotency_key=None):
        """Submit a generation job. With `wait_s` (up to 60), the API holds the answer until
        the job ends or that time passes: the job comes back finished when it was quick."""
        body = {"model_id": model_id, **_given(
            prompt=prompt, length=length, temperature=temperature, top_k=top_k, top_p=top_p,
            num_samples=num_samples, seed=seed, stop=stop, webhook=webhook,
            webhook_events=webhook_events)}
        headers, timeout = {}, self.timeout_s
        if wait_s:
            wait_s = min(int(wait_s), _MAX_PREFER_WAIT_S)
            headers["Prefer"] = f"wait={wait_s}"
            timeout = (self.timeout_s, self.timeout_s + wait_s)
        return self._call("POST", "/v1/generate", json=body, headers=headers,
                          timeout=timeout, idempotency_key=idempotency_key)

    def evaluate(self, model_ids, *, corpus_id=None, text=None, part=None,
                 holdout_fraction=None, webhook=None, webhook_events=None,
                 idempotency_key=None):
        """Submit an evaluation of the models on a corpus (its held-out tail unless `part`
        is "all") or a text; wait() for its result, a table of rows per model."""
        body = {"model_ids": list(model_ids), **_given(
            corpus_id=corpus_id, text=text, part=part, holdout_fraction=holdout_fraction,
            webhook=webhook, webhook_events=webhook_events)}
        return self._call("POST", "/v1/evaluations", json=body,
                          idempotency_key=idempotency_key)

    def sweep(self, corpus_id, space, *, trial_seconds, trials=None, preset=None,
              preprocessing=None, model=None, training=None, budget_seconds=None,
              final_fraction=None, parallel=None, idempotency_key=None):
        """Start a sweep: `space` maps dotted spec fields to a list of values or a range
        {low, high, log}; every trial is a training job of `trial_seconds`."""
        body = {"corpus_id": corpus_id, "space": space, "trial_seconds": trial_seconds,
                **_given(trials=trials, preset=preset, preprocessing=preprocessing,
                         model=model, training=training, budget_seconds=budget_seconds,
                         final_fraction=final_fraction, parallel=parallel)}
        return self._call("POST", "/v1/sweeps", json=body, idempotency_key=idempotency_key)

    def sweep_status(self, sweep_id):
        return self._call("GET", f"/v1/sweeps/{sweep_id}")

    def sweep_events(self, sweep_id, after="0", limit=None):
        """(events, cursor): the sweep's events after `after`, oldest first (live:
        stream_sweep_events)."""
        page = self._call("GET", f"/v1/sweeps/{sweep_id}/events",
                          params=_given(after=after, limit=limit))
        return page["data"], page["next"]

    def sweeps(self, *, page_size=100):
        """Every sweep of yours, newest first (summaries)."""
        return self._pages("/v1/sweeps", {}, page_size)

    def cancel_sweep(self, sweep_id):
        return self._call("POST", f"/v1/sweeps/{sweep_id}/cancel")

    def delete_sweep(self, sweep_id):
        self._call("DELETE", f"/v1/sweeps/{sweep_id}")

    def job(self, job_id):
        return self._call("GET", f"/v1/jobs/{job_id}")

    def samples(self, job_id):
        """Every sample of a generation job that succeeded (the job has only a preview)."""
        return self._call("GET", f"/v1/jobs/{job_id}/result")["samples"]

    def jobs_page(self, *, status=None, type=None, after=None, limit=None):
        return Page.of(self._call("GET", "/v1/jobs", params=_given(
            status=status, type=type, after=after, limit=limit)))

    def jobs(self, *, status=None, type=None, page_size=100):
        """Every job of yours, newest first, optionally of one status and type."""
        return self._pages("/v1/jobs", {"status": status, "type": type}, page_size)

    def cancel(self, job_id):
        return self._call("POST", f"/v1/jobs/{job_id}/cancel")

    def delete_job(self, job_id):
        """Delete a finished job, its events and checkpoints (its model stays)."""
        self._call("DELETE", f"/v1/jobs/{job_id}")

    def wait(self, job_id, *, timeout_s=None, poll_s=0.5, max_poll_s=2.0, on_update=None):
        """Poll until the job ends and return it; `on_update(job)` sees every poll.

        The pause between polls starts at `poll_s` and grows by half each time up to
        `max_poll_s`: a quick job is seen ending soon, a long one is not polled hard.
        Raises WaitTimeoutError after `timeout_s` (None: no limit).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        pause_s = poll_s
        while True:
            job = self.job(job_id)
            if on_update:
                on_update(job)
            if JobStatus(job["status"]).is_terminal:
                return job
            if deadline is not None:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    raise WaitTimeoutError(job, timeout_s)
                pause_s = min(pause_s, left_s)
            time.sleep(pause_s)
            pause_s = min(pause_s * 1.5, max(max_poll_s, poll_s))

    # --- events ------------------------------------------------------------------------

    def events(self, job_id, after="0", limit=None):
        """(events, cursor): up to `limit` events after the cursor `after`, oldest first, and
        the cursor to ask with later. A job's events grow while it runs: ask again with the
        cursor for what came since."""
        page = Page.of(self._call("GET", f"/v1/jobs/{job_id}/events",
                                  params=_given(after=after, limit=limit)))
        return page.data, page.next

    def all_events(self, job_id, *, after="0"):
        """Every event of the job so far, oldest first (an iterator: pages as needed)."""
        while True:
            events, after = self.events(job_id, after=after, limit=200)
            yield from events
            if len(events) < 200:
                return

    def stream_events(self, job_id, *, after=None):
        """The job's events live, oldest first, until the one that ends the job.

        From the start, or after the event id `after`. A connection that drops, or that the
        server ends at its time limit, is opened again with Last-Event-ID: no event is lost
        or seen twice. Raises ConnectionFailedError after several failed reconnections.
        """
        return self._stream(
            f"/v1/jobs/{job_id}", f"job {job_id}", after, is_final,
            lambda last_id: (JobStatus(self.job(job_id)["status"]).is_terminal and not
                             self.events(job_id, after=last_id or "0", limit=1)[0]))

    def stream_sweep_events(self, sweep_id, *, after=None):
        """The sweep's events live, oldest first, until its status event (as
        stream_events does a job's)."""
        return self._stream(
            f"/v1/sweeps/{sweep_id}", f"sweep {sweep_id}", after, is_sweep_final,
            lambda last_id: (self.sweep_status(sweep_id)["status"] != SweepStatus.RUNNING
                             and not self.sweep_events(sweep_id, after=last_id or "0",
                                                       limit=1)[0]))

    def _stream(self, path, what, after, is_last, has_ended):
        """`path`/events live; `is_last(event)` ends it, and so does `has_ended(last_id)`
        (nothing left after that id) when a stream closes without its last event."""
        last_id, failures = after, 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with self._send("GET", f"{path}/events", headers=headers,
                                stream=True, timeout=(self.timeout_s,
                                                      _STREAM_READ_TIMEOUT_S)) as response:
                    for message in parse(response.iter_content(chunk_size=None)):
                        if message.event == "timeout":  # the server's limit: reconnect
                            break
                        event = json.loads(message.data)
                        last_id, failures = message.id or event["id"], 0
                        yield event
                        if is_last(event):
                            return
                # Ended without the last event: the server's time limit, or the job or
                # sweep had ended before we asked from past its end.
                if has_ended(last_id):
                    return
            except (ConnectionFailedError, requests.RequestException) as e:
                failures += 1
                if failures > _STREAM_RETRIES:
                    raise ConnectionFailedError(
                        f"lost the event stream of {what} and could not reconnect "
                        f"({type(e).__name__})") from e
            except ApiError as e:
                if e.status != 503 or failures >= _STREAM_RETRIES:
                    raise
                failures += 1  # Redis restarting: the API answers again shortly
            time.sleep(min(_STREAM_BACKOFF_S[0] * 2 ** failures, _STREAM_BACKOFF_S[1]))

    # --- models ------------------------------------------------------------------------

    def model(self, model_id):
        return self._call("GET", f"/v1/models/{model_id}")

    def models_page(self, *, after=None, limit=None):
        return Page.of(self._call("GET", "/v1/models", params=_given(after=after,
                                                                     limit=limit)))

    def models(self, *, page_size=100):
        """Every model of yours, newest first."""
        return self._pages("/v1/models", {}, page_size)

    def delete_model(self, model_id):
        self._call("DELETE", f"/v1/models/{model_id}")

    def model_file(self, model_id, name):
        """The bytes of one file: model.keras, vocab.json, config.json or metrics.json."""
        return self._send("GET", f"/v1/models/{model_id}/files/{name}").content

    def download(self, model_id, directory):
        """The model's files (one zip from the API), extracted into `directory`; returns the
        paths written. The zip goes through a temporary file, never whole into memory: a
        model can be hundreds of MB."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        with tempfile.TemporaryFile() as archive:
            with self._send("GET", f"/v1/models/{model_id}/download", stream=True) as response:
                for chunk in response.iter_content(_CHUNK_BYTES):
                    archive.write(chunk)
            with zipfile.ZipFile(archive) as files:
                for name in files.namelist():
                    target = directory / Path(name).name  # flat: a name is never a path
                    with files.open(name) as source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out, _CHUNK_BYTES)
                    written.append(target)
        return written


def file_sha256(path):
    """SHA-256 (hex) of a file's bytes, as the API records `upload_sha256`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _raise_for_problem(response):
    if response.status_code < 400:
        return
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError(problem)
    except ValueError:
        problem = {"detail": response.text[:200].strip() or response.reason}
    retry_after = response.headers.get("Retry-After")
    raise ApiError(response.status_code, problem,
                   float(retry_after) if retry_after and retry_after.isdigit() else None)
