"""Newest-first pages over a sorted-set index, with an opaque cursor.

An index scores ids by creation time in whole microseconds (exact in a double until the
year 2255; two records of one owner never share one in practice). A cursor is the score
and id of the last item a page returned, `<score>-<id>`; clients pass it back as they
got it. The next page
starts right after it, so items created meanwhile never shift a page (offsets would).
Ties in score are ordered by id, as ZREVRANGEBYSCORE orders them. Any string of the
cursor's form is a position, so a well-formed cursor is never refused.
"""

import re
import time
from dataclasses import dataclass

from shared.contracts.errors import ValidationError

MAX_LIMIT = 200  # items per page a client may ask for
_CHUNK = 200  # ids read from the index per round trip
# A filtered listing (jobs by status) reads at most this many ids per request, then answers
# with what it found and a cursor, so one request never walks a huge index.
_MAX_SCAN = 5_000


@dataclass
class Page:
    data: list
    next: str | None  # pass back as `after`; None when there is nothing more

    @property
    def has_more(self):
        return self.next is not None


CURSOR_PATTERN = r"^[0-9]{1,16}-[a-z0-9_]{1,100}$"


def creation_score():
    """A new record's score in its owner's index: now, in microseconds."""
    return int(time.time() * 1_000_000)

_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(score, item_id):
    return f"{int(score)}-{item_id}"


def decode_cursor(cursor):
    if not _CURSOR.match(cursor):
        raise ValidationError("'after' must be a cursor from this listing's 'next'",
                              field="after")
    score, item_id = cursor.split("-", 1)
    return int(score), item_id


def newest_first(redis, index_key, load_many, *, after=None, limit=50, keep=None):
    """A Page of records from `index_key`, newest first, after the cursor `after`.

    `load_many(ids)` returns the records of `ids` in order (None where one is gone: it is
    skipped); `keep(record)` filters.
    """
    score, last_id = decode_cursor(after) if after else (None, None)
    found = []  # (score, record)
    scanned = 0
    while len(found) <= limit and scanned < _MAX_SCAN:
        entries = redis.zrevrangebyscore(index_key, "+inf" if score is None else score,
                                         "-inf", start=0, num=_CHUNK, withscores=True)
        if last_id is not None:
            # Same-score entries up to and including the cursor's were on earlier pages.
            entries = [(i, s) for i, s in entries if s < score or i < last_id]
        if not entries:
            break
        scanned += len(entries)
        records = load_many([item_id for item_id, _ in entries])
        for (_, item_score), record in zip(entries, records):
            if record is not None and (keep is None or keep(record)):
                found.append((item_score, record))
        score, last_id = entries[-1][1], entries[-1][0]
    if len(found) > limit:
        last_score, last = found[limit - 1]
        return Page([r for _, r in found[:limit]], encode_cursor(last_score, last["id"]))
    if scanned >= _MAX_SCAN:  # stopped scanning: more may match further down
        return Page([r for _, r in found], encode_cursor(score, last_id))
    return Page([r for _, r in found], None)
