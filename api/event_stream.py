"""A job's events as server-sent events (text/event-stream), live until the job ends.

Each event goes out with its stream id as `id:`, so a client that reconnects with
Last-Event-ID gets what it missed and nothing twice. A stream holds one gunicorn thread
(the `gthread` worker class, see client/stack.py), so it is bounded: a comment line every
HEARTBEAT_S keeps proxies from cutting it and notices a client that left, and it ends after
TEXTGEN_SSE_MAX_S, when the client reconnects.
"""

import json
import time

import redis
from flask import Response, request, stream_with_context

from api.context import services
from shared.jobs import JobStatus
from shared.schemas import Event

HEARTBEAT_S = 15.0  # under the usual 30-60 s idle timeouts of proxies
RETRY_MS = 2000  # what the browser waits before reconnecting
_BLOCK_MS = 1000  # one blocking read; below the Redis client's command timeout


def wants_event_stream():
    return request.accept_mimetypes.best_match(
        ["application/json", "text/event-stream"]) == "text/event-stream"


def event_stream(job, after):
    jobs = services().jobs
    max_s = services().settings.sse_max_s
    job_id = job["id"]

    def generate():
        cursor = after  # an event id, validated by the view
        yield f"retry: {RETRY_MS}\n\n"
        started = last_sent = time.monotonic()
        while time.monotonic() - started < max_s:
            try:
                events = jobs.wait_events(job_id, cursor, block_ms=_BLOCK_MS)
                ended = not events and JobStatus(jobs.get(job_id)["status"]).is_terminal
            except redis.ConnectionError:
                return  # Redis went away: end the stream; the client reconnects
            for event in events:
                cursor = event["id"]
                yield (f"id: {cursor}\nevent: {event['type']}\n"
                       f"data: {Event.model_validate(event).model_dump_json()}\n\n")
                last_sent = time.monotonic()
                ended = ended or _is_final(event)
            if ended:
                return
            if time.monotonic() - last_sent >= HEARTBEAT_S:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
        yield f"event: timeout\ndata: {json.dumps({'after': cursor})}\n\n"

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


def _is_final(event):
    return event["type"] == "status" and JobStatus(event["data"]["status"]).is_terminal
