"""One reader per API process for every event stream (a job's, a sweep's) that a request
waits on.

Event streams and `Prefer: wait` requests wait for a stream's next event. Each blocking in an
XREAD of its own would hold a Redis connection while it waits: redis-py's pool has 100 a
process, so about 200 open streams left none for short requests, which then failed with
503 (bench/README.md), and thousands would need thousands of connections. Instead one
thread blocks in one XREAD over every followed stream and wakes the requests whose
stream had news; each then reads its events itself with a short XRANGE. The XREAD also
names a wake stream of this process: a request that follows a stream the reader is not
reading yet adds an entry there, so the reader starts again at once with it included.

A follower arms before it reads and waits after, so an event that lands in between still
wakes it:

    with hub.follow(keys.events(job_id)) as follower:
        follower.arm()
        events = ...read after cursor...
        if not events:
            follower.wait(cursor, timeout_s)
"""

import contextlib
import logging
import threading
import time
import uuid

import redis

log = logging.getLogger(__name__)

BLOCK_MS = 1000  # one XREAD; under the Redis client's 2 s command timeout
_ENTRIES_PER_READ = 100  # per stream: the reader only needs to see that there are some
_RETRY_S = 1.0  # after a Redis error, before reading again
_WAKE_TTL_MS = 60_000  # a dead process's wake stream goes away after this
_WAKE_MAXLEN = 10  # the wake stream's entries are signals: a few are enough


class EventHub:
    def __init__(self, redis_client, keys):
        self.redis = redis_client
        self._wake_key = keys.event_hub_wake(uuid.uuid4().hex)
        self._lock = threading.Lock()
        self._followers = {}  # stream key -> set of threading.Event, one per waiting request
        self._cursors = {}  # stream key -> the stream id the reader reads after
        self._wake_sent = False  # a wake entry went out since the reader's last XREAD
        self._reader = None

    @contextlib.contextmanager
    def follow(self, key):
        """Wait on the Redis stream `key`'s events (a job's: keys.events(job_id))."""
        follower = Follower(self, key)
        try:
            yield follower
        finally:
            with self._lock:
                waiting = self._followers.get(key, set())
                waiting.discard(follower.event)
                if not waiting:
                    self._followers.pop(key, None)
                    self._cursors.pop(key, None)

    def _watch(self, key, event, cursor):
        """Wake `event` on the stream's next event after `cursor`."""
        with self._lock:
            self._followers.setdefault(key, set()).add(event)
            known = self._cursors.get(key)
            lowered = known is None or _stream_id(cursor) < _stream_id(known)
            if lowered:
                self._cursors[key] = cursor
            wake = lowered and not self._wake_sent
            self._wake_sent = self._wake_sent or wake
            if self._reader is None or not self._reader.is_alive():
                self._reader = threading.Thread(target=self._read, name="event-hub",
                                                daemon=True)
                self._reader.start()
        if wake:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=_WAKE_MAXLEN, approximate=True)
            pipe.pexpire(self._wake_key, _WAKE_TTL_MS)
            pipe.execute()

    def _read(self):
        wake_cursor = "0"
        while True:
            with self._lock:
                streams = dict(self._cursors)
                self._wake_sent = False
            streams[self._wake_key] = wake_cursor
            try:
                reply = self.redis.xread(streams, count=_ENTRIES_PER_READ, block=BLOCK_MS)
            except redis.RedisError as e:
                log.warning("event hub: Redis unavailable (%s); reading again in %.0f s",
                            type(e).__name__, _RETRY_S)
                time.sleep(_RETRY_S)
                continue
            except Exception:  # noqa: BLE001 - the reader must outlive any one bad read
                log.exception("event hub: a read failed")
                time.sleep(_RETRY_S)
                continue
            with self._lock:
                for key, entries in reply or ():
                    if key == self._wake_key:
                        wake_cursor = entries[-1][0]
                    elif key in self._cursors:
                        # Every follower waiting now hears of it, also one that lowered
                        # the cursor during the read: none can miss what is skipped here.
                        self._cursors[key] = entries[-1][0]
                        for event in self._followers[key]:
                            event.set()


class Follower:
    """One request's wait on one stream's events."""

    def __init__(self, hub, key):
        self.hub = hub
        self.key = key
        self.event = threading.Event()

    def arm(self):
        """Before reading: from here on, a new event ends the next wait at once."""
        self.event.clear()

    def wait(self, cursor, timeout_s):
        """Until the stream has an event after `cursor`, or `timeout_s`; True when it has."""
        self.hub._watch(self.key, self.event, cursor)
        return self.event.wait(timeout_s)


def _stream_id(value):
    """A stream id ("1700000000000-3", "0") as a comparable pair; anything else as 0-0,
    which costs at most one needless read."""
    left, _, right = str(value).partition("-")
    try:
        return int(left), int(right or 0)
    except ValueError:
        return 0, 0
