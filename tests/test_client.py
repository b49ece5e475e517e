"""The Python client on the real stack (upload reuse, errors, the live event stream), and on
a scripted stand-in for the API where the real one cannot be made to misbehave on demand:
a stream cut in the middle, a job that never ends."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from client import ApiError, Client, ConnectionFailedError, WaitTimeoutError
from shared.stack.runner import free_port
from tests.conftest import TOKENS
from tests.test_end_to_end import TEXT, TINY_DEFAULT


@pytest.fixture
def api(stack):
    return Client(stack.url, token=TOKENS["alice"])


def test_upload_reuses_the_corpus_of_the_same_bytes(api, tmp_path):
    path = tmp_path / "night.txt"
    path.write_text(TEXT + "reuse\n")
    assert api.find_upload(path) is None
    first = api.upload(path)
    assert api.upload(path)["id"] == first["id"]
    assert api.find_upload(path)["id"] == first["id"]
    path.write_text(TEXT + "reuse!\n")  # one byte more: another corpus
    assert api.upload(path)["id"] != first["id"]


def test_errors_carry_the_problem(api):
    with pytest.raises(ApiError) as missing:
        api.job("job_nope")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert str(missing.value) == "Not found: no job with id 'job_nope'"
    with pytest.raises(ApiError) as invalid:
        api.train("cor_nope", training={"epochs": "3"})
    assert invalid.value.code == "validation_failed" and invalid.value.field == "training.epochs"
    assert invalid.value.errors[0]["pointer"] == "/training/epochs"
    with pytest.raises(ConnectionFailedError):
        Client(f"http://127.0.0.1:{free_port()}", timeout_s=2).health()


def test_stream_events_follows_live_and_resumes_after_an_event(api, tmp_path):
    path = tmp_path / "night.txt"
    path.write_text(TEXT)
    job = api.train(api.upload(path)["id"], **TINY_DEFAULT)
    live = list(api.stream_events(job["id"]))
    # A training's progress events come between (tests/test_progress_events.py).
    assert [e["type"] for e in live if e["type"] != "progress"] == [
        "status", "status", "epoch_end", "epoch_end", "status"]
    assert live[-1]["data"]["status"] == "succeeded"
    assert live == list(api.all_events(job["id"])) == api.events(job["id"])[0]
    # From past the second event: the rest, each once; past the last: nothing, at once.
    assert list(api.stream_events(job["id"], after=live[1]["id"])) == live[2:]
    assert list(api.stream_events(job["id"], after=live[-1]["id"])) == []


# --- a scripted stand-in for the API ---------------------------------------------------


def _event(event_id, event_type, data):
    return {"id": event_id, "type": event_type, "time": "2026-01-01T00:00:00Z", "data": data}


class StandIn(BaseHTTPRequestHandler):
    """GET /v1/jobs/job_1 (always running) and its event stream, which sends the running
    status and then ends the connection, as a proxy or a restart would; asked again with
    Last-Event-ID, it sends the end of the job. GET /v1/jobs/job_dropped closes the
    connection unanswered the first time."""

    protocol_version = "HTTP/1.0"  # the body ends when the connection closes
    cut = "drop"  # or "timeout": the server's own time limit event before it closes
    seen = []  # (path, Last-Event-ID, when) of every request

    def do_GET(self):
        StandIn.seen.append((self.path, self.headers.get("Last-Event-ID"), time.monotonic()))
        if self.path == "/v1/jobs/job_dropped" and len(StandIn.seen) == 1:
            return  # no answer at all, as to a request on an idle connection being closed
        if self.path in ("/v1/jobs/job_1", "/v1/jobs/job_dropped"):
            return self._send("application/json", json.dumps(
                {"id": "job_1", "status": "running"}).encode())
        running = _event("1-0", "status", {"status": "running"})
        done = _event("2-0", "status", {"status": "succeeded"})
        if self.headers.get("Last-Event-ID") is None:
            body = f"id: 1-0\nevent: status\ndata: {json.dumps(running)}\n\n"
            if StandIn.cut == "timeout":
                body += 'event: timeout\ndata: {"after": "1-0"}\n\n'
        else:
            body = f": keepalive\n\nid: 2-0\nevent: status\ndata: {json.dumps(done)}\n\n"
        self._send("text/event-stream", body.encode())

    def _send(self, content_type, body):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    StandIn.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Client(f"http://127.0.0.1:{server.server_address[1]}", token="t")
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("cut", ["drop", "timeout"])
def test_stream_events_reconnects_with_last_event_id(stand_in, cut):
    StandIn.cut = cut
    events = list(stand_in.stream_events("job_1"))
    assert [(e["id"], e["data"]["status"]) for e in events] == [("1-0", "running"),
                                                                 ("2-0", "succeeded")]
    streams = [last_id for path, last_id, _ in StandIn.seen if path.endswith("/events")]
    assert streams == [None, "1-0"]


def test_wait_backs_off_then_times_out(stand_in):
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as timed_out:
        stand_in.wait("job_1", timeout_s=1.5, poll_s=0.1, max_poll_s=0.4)
    assert 1.5 <= time.monotonic() - started < 3
    assert timed_out.value.job["status"] == "running"
    polls = [when for _, _, when in StandIn.seen]
    pauses = [b - a for a, b in zip(polls, polls[1:], strict=False)]
    # 0.1, 0.15, 0.225, 0.34, then 0.4 each: 6 to 8 polls in 1.5 s, not 15.
    assert 5 <= len(polls) <= 9, pauses
    assert pauses[0] < 0.25 and max(pauses) < 0.6 and pauses[3] > pauses[0]


def test_a_get_the_server_closed_unanswered_is_sent_once_more(stand_in):
    assert stand_in.job("job_dropped")["status"] == "running"
    assert [path for path, _, _ in StandIn.seen] == ["/v1/jobs/job_dropped"] * 2


def test_the_live_bar_shows_no_epoch_time_left_past_the_jobs_eta():
    """A time budget ends the job before the epoch would: the bar says the job's time."""
    import io

    from client.follow import duration
    from client.live_bar import EpochBars

    bars = EpochBars(io.StringIO())
    progress = {"epoch": 1, "epochs": 3, "step": 1, "steps": 1000, "eta_seconds": None}
    bars.show(progress, {})
    [task] = bars.progress.tasks
    [column] = [c for c in bars.progress.columns if type(c).__name__ == "_EpochTimeLeft"]
    assert column.render(task).plain == ""  # no speed measured yet: nothing, not a guess
    time.sleep(0.3)
    bars.show({**progress, "step": 2}, {})  # ~3 steps/s: the epoch's 998 left take minutes
    assert task.time_remaining > 60
    # With no job ETA yet, the epoch's own.
    assert column.render(task).plain == duration(task.time_remaining)
    bars.show({**progress, "step": 3, "eta_seconds": 5.0}, {})
    assert column.render(task).plain == "0:00:05"
