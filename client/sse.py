"""Reading a text/event-stream: bytes as they arrive in, one ServerSentEvent per event out.

The parsing rules of the HTML standard's "event stream interpretation", reduced to what a
client of one server needs: lines end in LF, CRLF or CR; `:` starts a comment (the
server's heartbeat); `data` lines join with LF; a blank line dispatches. Lines are split
on bytes and decoded one by one, so a character that str.splitlines would also treat as a
line end (U+2028 in a sample of text, say) stays inside its line.
"""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str  # "message" when the server named none
    data: str
    id: str | None  # this event's `id:` field, if it had one


# A CR at the very end of what arrived may be the first half of a CRLF: not a line end yet.
_LINE_END = re.compile(rb"\r\n|\r(?!\Z)|\n")


def _lines(chunks):
    rest = b""
    for chunk in chunks:
        *lines, rest = _LINE_END.split(rest + chunk)
        for line in lines:
            yield line.decode("utf-8", errors="replace")
    if rest:
        yield rest.rstrip(b"\r").decode("utf-8", errors="replace")


def parse(chunks):
    """Yield a ServerSentEvent for each event in `chunks`, an iterable of bytes."""
    event, data, event_id = "", [], None
    for line in _lines(chunks):
        if not line:
            if data:
                yield ServerSentEvent(event or "message", "\n".join(data), event_id)
            event, data, event_id = "", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            event_id = value
        # `retry` and unknown fields: a reconnecting client of ours sets its own back-off.
