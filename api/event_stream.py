"""A job's events as server-sent events (text/event-stream), live until the job ends.

Each event goes out with its stream id as `id:`, so a client that reconnects with
Last-Event-ID gets what it missed and nothing twice. A stream holds one of the API's many
threads (docs/serving.md), idle while it waits on this process's event hub
(api/event_hub.py), not on a Redis connection of its own. It holds one of its owner's
stream slots (TEXTGEN_MAX_STREAMS_PER_OWNER; 429 beyond), renewed as it goes. A comment
line every HEARTBEAT_S keeps proxies from cutting it and notices a client that left, and
it ends after TEXTGEN_SSE_MAX_S, when the client reconnects.
"""

import json
import time

import redis
from flask import Response, request, stream_with_context

from api.context import event_hub, services
from api.held import take_slot
from shared.jobs import JobStatus
from shared.schemas import Event
from shared.stream_slots import RENEW_S

HEARTBEAT_S = RENEW_S  # under the usual 30-60 s idle timeouts of proxies
RETRY_MS = 2000  # what the browser waits before reconnecting
_PAGE = 100  # events read at once


def wants_event_stream():
    return request.accept_mimetypes.best_match(
        ["application/json", "text/event-stream"]) == "text/event-stream"


def event_stream(job, after):
    jobs = services().jobs
    max_s = services().settings.sse_max_s
    hub = event_hub()
    job_id = job["id"]
    slot = take_slot()

    def generate():
        cursor = after  # an event id, validated by the view
        yield f"retry: {RETRY_MS}\n\n"
        started = last_sent = time.monotonic()
        with hub.follow(job_id) as follower:
            while (left_s := max_s - (time.monotonic() - started)) > 0:
                follower.arm()
                try:
                    slot.renew_if_due()
                    events, cursor_after = jobs.events(job_id, after=cursor, limit=_PAGE)
                    ended = not events and JobStatus(jobs.get(job_id)["status"]).is_terminal
                except redis.ConnectionError:
                    return  # Redis went away: end the stream; the client reconnects
                for event in events:
                    yield (f"id: {event['id']}\nevent: {event['type']}\n"
                           f"data: {Event.model_validate(event).model_dump_json()}\n\n")
                    ended = ended or _is_final(event)
                if ended:
                    return
                cursor = cursor_after
                if events:
                    last_sent = time.monotonic()
                    continue  # there may be more: read again before waiting
                quiet_s = HEARTBEAT_S - (time.monotonic() - last_sent)
                if quiet_s <= 0:
                    yield ": keepalive\n\n"
                    last_sent = time.monotonic()
                else:
                    follower.wait(cursor, min(quiet_s, left_s))
        yield f"event: timeout\ndata: {json.dumps({'after': cursor})}\n\n"

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.call_on_close(slot.release)  # also when the stream never started
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


def _is_final(event):
    return event["type"] == "status" and JobStatus(event["data"]["status"]).is_terminal
