"""An event stream's answer (a job's, a sweep's): a JSON page of its events, or with
Accept: text/event-stream the events as server-sent events, live until the job or sweep
ends.

Each event goes out with its stream id as `id:`, so a client that reconnects with
Last-Event-ID gets what it missed and nothing twice. A stream holds one of the API's many
threads (docs/serving.md), idle while it waits on this process's event hub
(api/event_hub.py), not on a Redis connection of its own. It holds one of its owner's
stream slots (TEXTGEN_MAX_STREAMS_PER_OWNER; 429 beyond), renewed as it goes. A comment
line every HEARTBEAT_S keeps proxies from cutting it and notices a client that left, and
it ends after TEXTGEN_SSE_MAX_S, when the client reconnects.
"""

import json
import re
import time

import redis
from flask import Response, request, stream_with_context

from api.bodies import query
from api.context import event_hub, services
from api.held import take_slot
from api.responses import respond
from shared.contracts.errors import ValidationError
from shared.stores.jobs import read_events
from shared.contracts.schemas import EVENT_ID_PATTERN, Event, EventsQuery, Page
from shared.stores.owner_slots import RENEW_S

HEARTBEAT_S = RENEW_S  # under the usual 30-60 s idle timeouts of proxies
RETRY_MS = 2000  # what the browser waits before reconnecting
_PAGE = 100  # events read at once

# What an events operation says in the OpenAPI document: @operation(..., **EVENTS_ANSWER).
EVENTS_ANSWER = {
    "query": EventsQuery,
    "headers": {"Last-Event-ID": ("stream: resume after this event",
                                  {"type": "string", "pattern": EVENT_ID_PATTERN})},
}
EVENTS_CONTENT = ({"application/json": {"schema": {"$model": (Page[Event], "serialization")}},
                   "text/event-stream": {"schema": {"type": "string"}}},
                  "a page of events, or the live stream")


def events_answer(key, status_type, read_status):
    """The events of the Redis stream `key`: a page, or the live stream.

    `read_status()` is the job's or sweep's status now (NotFoundError when it is not the
    caller's: read before any event is); `status_type` its enum, whose `is_terminal` ends
    the stream.
    """
    args = query(EventsQuery)
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is not None and not re.fullmatch(EVENT_ID_PATTERN, last_event_id):
        raise ValidationError("Last-Event-ID must be the id of an event of this stream",
                              field="Last-Event-ID")
    read_status()
    if _wants_event_stream():
        return _event_stream(key, last_event_id or args.after,
                             lambda: status_type(read_status()).is_terminal,
                             lambda event: event["type"] == "status" and status_type(
                                 event["data"]["status"]).is_terminal)
    events, cursor = read_events(services().redis, key, after=args.after, limit=args.limit)
    # Unlike other listings, events grow while the job or sweep runs: `next` is always the
    # cursor to ask with later, and `has_more` says whether more are there now.
    return respond(Page[Event](data=[Event.model_validate(e) for e in events],
                               has_more=len(events) == args.limit, next=cursor,
                               limit=args.limit))


def _wants_event_stream():
    return request.accept_mimetypes.best_match(
        ["application/json", "text/event-stream"]) == "text/event-stream"


def _event_stream(key, after, has_ended, is_final):
    redis_client = services().redis
    max_s = services().settings.sse_max_s
    hub = event_hub()
    slot = take_slot()

    def generate():
        cursor = after  # an event id, validated by the view
        yield f"retry: {RETRY_MS}\n\n"
        started = last_sent = time.monotonic()
        with hub.follow(key) as follower:
            while (left_s := max_s - (time.monotonic() - started)) > 0:
                follower.arm()
                try:
                    slot.renew_if_due()
                    events, cursor_after = read_events(redis_client, key, cursor, _PAGE)
                    ended = not events and has_ended()
                except redis.ConnectionError:
                    return  # Redis went away: end the stream; the client reconnects
                for event in events:
                    yield (f"id: {event['id']}\nevent: {event['type']}\n"
                           f"data: {Event.model_validate(event).model_dump_json()}\n\n")
                    ended = ended or is_final(event)
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
