"""Following a job until it ends: a line for each event worth reading, and on a terminal a
live bar for the running epoch.

The lines come from the job's live event stream (status changes, resumes, and at each
epoch's end its losses and a sample), and so does the bar: a training's `progress` events
(twice a second at most). A worker that falls silent is no event, so a thread polls the
job for the worker's heartbeat, and for the bar while no progress event comes (a job past
its cap of streamed events, or a worker sending none). Off a terminal there are no bars
and no colour: one line per event, each printed once.
"""

import json
import sys
import threading
import time

from client.errors import ClientError
from client.evaluation_text import evaluation_table
from client.records import JobStatus


def _num(value, spec=".3f"):
    return "-" if value is None else format(value, spec)


def duration(seconds):
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def epoch_line(data, epochs, level="char"):
    """One epoch's figures: losses in nats per token, bits per token (and per character,
    for word models), throughput, time."""
    parts = [f"epoch {data['epoch']}/{epochs}", f"loss {_num(data.get('loss'))}"]
    if data.get("val_loss") is not None:
        parts.append(f"val {_num(data['val_loss'])}")
    for key, shown in (("bits_per_token", "token"), ("bits_per_char", "char")):
        if data.get(key) is not None:
            parts.append(f"{data[key]:.3f} bits/{shown}")
    if data.get("targets_per_s"):
        parts.append(speed(data["targets_per_s"], level))
    if data.get("train_seconds") is not None:
        parts.append(f"{data['train_seconds']:.1f} s")
    return "  ".join(parts)


def speed(targets_per_s, level="char"):
    """Training speed: characters (or word tokens) per second."""
    return f"{targets_per_s:,.0f} {'char' if level == 'char' else 'token'}s/s"


def sample_text(sample, prompt):
    """A generated sample as printed: the prompt, then what the model wrote. Without a
    prompt the model starts after a line break and often writes more: the printed text
    does not open with blank lines."""
    return sample["text"] if prompt else sample["text"].lstrip("\n")


def sample_heading(number, temperature):
    """The line above the `number`th sample (from 1) when a job has several."""
    return f"--- sample {number} (temperature {temperature:g}) ---"


def quoted(sample):
    """A sample on one line: JSON-quoted, so a line break shows as \\n."""
    return json.dumps(sample, ensure_ascii=False)


def status_line(job_id, data):
    """The line for a status event, or None for an end (end_lines says more)."""
    status = JobStatus(data["status"])
    if status is JobStatus.QUEUED and data.get("attempt"):  # the reaper's hand-over
        return (f"{job_id} queued again as attempt {data['attempt']}"
                + (f": {data['reason']}" if data.get("reason") else ""))
    if status is JobStatus.QUEUED:
        return f"{job_id} queued"
    if status is JobStatus.RUNNING:
        return f"{job_id} running" + (f" on {data['worker']}" if data.get("worker") else "")
    return None


def end_lines(job):
    """How the job ended: its model, its samples, or its error."""
    status = JobStatus(job["status"])
    if status is JobStatus.FAILED:
        error = job.get("error") or {}
        return [f"{job['id']} failed: {error.get('code')}: {error.get('message')}"]
    if status is JobStatus.CANCELLED:
        return [f"{job['id']} cancelled"]
    result = job.get("result") or {}
    if "model_id" in result:
        why = f", stopped: {job['stopped_reason']}" if job.get("stopped_reason") else ""
        return [f"{job['id']} succeeded: model {result['model_id']} "
                f"(best epoch {result.get('best_epoch')}{why})"]
    if "models" in result:  # an evaluation: its table
        count = len(result["models"])
        return [f"{job['id']} succeeded: {count} model{'s' * (count != 1)} scored on "
                f"{result['chars']:,} characters", *evaluation_table(result)]
    more = result.get("sample_count", 0) - len(result.get("preview", []))
    return ([f"{job['id']} succeeded: {result.get('sample_count', 0)} samples (a preview; "
             f"`textgen samples {job['id']}` prints them in full)"]
            + [s["text"] + " …" for s in result.get("preview", [])]
            + ([f"… and {more} more"] if more > 0 else []))


def silence_line(job):
    """A line when the running job's worker has stopped renewing its lease (None while it
    does): how long it has been silent, and when the next attempt takes over."""
    beat = job.get("heartbeat")
    if job["status"] != JobStatus.RUNNING or not beat:
        return None
    lease_s = beat["age_s"] + beat["lease_left_s"]
    # The worker renews every lease_s / 6 (worker/lease.py): two renewals missed is silence.
    if beat["age_s"] <= lease_s / 3:
        return None
    worker = (job.get("attempts") or [{}])[-1].get("worker") or "its worker"
    return (f"{job['id']}: {worker} has not answered for {beat['age_s']:.0f} s; if it "
            f"stays silent, attempt {job['attempt'] + 1} takes over in about "
            f"{beat['lease_left_s']:.0f} s from the last checkpoint (or the job fails, "
            "after its last attempt)")


class PlainView:
    """Off a terminal: one plain line per event worth reading, and a line when the worker
    stops answering (a thread polls the job for its heartbeat: silence is no event)."""

    poll_s = 1.0  # how often to look at the worker's heartbeat (it beats every 5 s)

    def __init__(self, client, job, out):
        self.client, self.job, self.out = client, job, out
        spec = job.get("spec") or {}
        self.epochs = (spec.get("training") or {}).get("epochs", "?")
        self.level = (spec.get("preprocessing") or {}).get("level", "char")
        self.lock = threading.Lock()  # lines from the stream's thread and the poller's
        self.silent = False
        self.stop = threading.Event()
        self.poller = threading.Thread(target=self._poll, name="progress", daemon=True)

    def __enter__(self):
        if self.poll_s:
            self.poller.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        return False

    def write(self, line):
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    def _poll(self):
        from client.api_client import Client

        # A client of its own: a requests Session is not shared between threads.
        api = Client(self.client.base_url, self.client.token, timeout_s=10)
        while not self.stop.wait(self.poll_s):
            try:
                job = api.job(self.job["id"])
            except ClientError:
                continue  # the next poll will do; the stream reports real trouble
            if not self.stop.is_set():
                self.polled(job)

    def polled(self, job):
        """Say once when the worker falls silent, and once when it answers again."""
        line = silence_line(job)
        if line and not self.silent:
            self.write(line)
        elif self.silent and not line and job["status"] == JobStatus.RUNNING:
            self.write(f"{job['id']}: the worker answers again")
        self.silent = bool(line)

    def event(self, event):
        data = event["data"]
        if event["type"] == "status":
            line = status_line(self.job["id"], data)
        elif event["type"] == "resumed":
            line = f"attempt {data.get('attempt')} resumes after epoch {data.get('epoch')}"
        elif event["type"] == "epoch_end":
            line = self.epoch(data)
        else:
            line = None
        if line:
            self.write(line)

    def epoch(self, data):
        line = epoch_line(data, self.epochs, self.level)
        return line + (f"  sample {quoted(data['sample'])}" if data.get("sample") else "")

    def end(self, job):
        for line in end_lines(job):
            self.write(line)


class JsonView(PlainView):
    """--json: each event as a JSON line, then the final job."""

    poll_s = None  # events only: a reader of JSON lines asks for the job itself

    def event(self, event):
        self.write(json.dumps(event, ensure_ascii=False))

    def end(self, job):
        self.write(json.dumps(job, ensure_ascii=False))


class LiveView(PlainView):
    """On a terminal: the lines above the live bar of the running epoch (rich), the bar
    moved by progress events, or by the polled job while they are silent."""

    # No progress event for this long (four the worker would have sent): the bar follows
    # the polled job instead, until events come again.
    events_silent_s = 2.0

    def __init__(self, client, job, out):
        super().__init__(client, job, out)
        from client.live_bar import EpochBars  # rich: loaded only on a terminal

        self.bars = EpochBars(out, self.level)
        self.last_progress = time.monotonic()  # of the last progress event, or the start

    def __enter__(self):
        self.bars.start()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.bars.stop()
        return False

    def write(self, line):
        self.bars.print(line)

    def epoch(self, data):
        self.bars.epoch_ended(data["epoch"])
        self.bars.print(epoch_line(data, self.epochs, self.level), style="bold")
        if data.get("sample"):
            self.bars.print_sample(data["sample"])
        return None

    def event(self, event):
        if event["type"] == "progress":
            self.last_progress = time.monotonic()
            self.bars.show(event["data"], {"loss": event["data"].get("loss")})
        else:
            super().event(event)

    def polled(self, job):
        super().polled(job)
        if (job["status"] == JobStatus.RUNNING
                and time.monotonic() - self.last_progress > self.events_silent_s):
            self.bars.show(job["progress"], job.get("metrics") or {})


def follow(client, job_id, *, out=None, live=None, json_lines=False):
    """Show the job's events (and, on a terminal, its progress) until it ends; return the
    job as it ended. A KeyboardInterrupt closes the display and propagates."""
    out = out or sys.stdout
    job = client.job(job_id)
    if json_lines:
        view_class = JsonView
    elif live if live is not None else out.isatty():
        view_class = LiveView
    else:
        view_class = PlainView
    with view_class(client, job, out) as view:
        for event in client.stream_events(job_id):
            view.event(event)
        job = client.job(job_id)
    view.end(job)
    return job


def ask_to_cancel(client, job_id, stdin=None, err=None):
    """After Ctrl-C: cancel the job, or only stop following it (the default)."""
    stdin, err = stdin or sys.stdin, err or sys.stderr
    err.write(f"\ncancel job {job_id}? [y/N] (no: stop following, the job goes on) ")
    err.flush()
    try:
        answer = stdin.readline()
    except KeyboardInterrupt:  # a second Ctrl-C: stop following, cancel nothing
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        job = client.cancel(job_id)
        err.write(f"job {job_id} {job['status']}\n")
    else:
        err.write(f"stopped following; job {job_id} goes on "
                  f"(textgen status {job_id} --follow to watch it again)\n")
    err.flush()
