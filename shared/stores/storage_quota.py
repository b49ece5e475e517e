"""The per-owner storage quota (TEXTGEN_MAX_STORAGE_MB): what each owner keeps in the
artifact store, counted in Redis as things are stored and deleted.

Per owner, three keys under the owner's hash tag, changed together by one script (which
also reads the owner's active jobs, under the same tag):

    storage-items     item -> bytes: "corpus:<id>", "model:<id>", "checkpoints:<job id>"
    storage-used      the sum of the items
    storage-reserved  training job id -> the bytes it may store (its checkpoints and
                      model, estimated at submission: shared/sizing/model_storage.py)

An item is set to its size (not added to), so a recount after every checkpoint is exact
however often it runs, and deleting sets it to nothing. A training job's reservation
counts only what its checkpoints have not used yet, and goes once the job has ended (its
model and checkpoints are then items of their own): the script drops the reservation of a
job that left the owner's active set (shared/stores/scheduler.py), one set lookup inside
Redis per reservation rather than a read of each reserving job's record on every
submission. A job's reservation is taken before
the job exists, under a pending token that expires, so two submissions at once cannot
both slip under the quota; the token becomes the job's id once it is created.

Corpora are charged to each owner who uploads one, though the store keeps one copy of a
text: an owner's usage does not depend on what others upload.
"""

import contextlib
import secrets

from shared.contracts.errors import StorageQuotaError, TextgenError

MB = 1024 * 1024
# A pending reservation outlives a submission that died between reserving and creating its
# job by this long, in ms; a submission takes milliseconds.
PENDING_MS = 60_000

# KEYS: items, used, reserved, the owner's active jobs. ARGV: item (or "" for none), its
# new size in bytes, the limit in bytes (-1: record without checking), reservation field
# (or ""), its bytes, how long a new pending reservation lives in ms; Redis-side now is
# read here. Returns {1, used, reserved} when written, {0, used, reserved} when the change
# would pass the limit (nothing written). A job's reservation whose job is no longer
# active (it ended, or is gone) is dropped on the way.
_CHANGE_LUA = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local old = 0
local new = 0
if ARGV[1] ~= '' then
  old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  new = tonumber(ARGV[2])
end
local reserved = 0
local entries = redis.call('HGETALL', KEYS[3])
for i = 1, #entries, 2 do
  local field, value = entries[i], entries[i + 1]
  local bytes, expires = string.match(value, '^(%d+):?(%d*)$')
  bytes = tonumber(bytes)
  local gone
  if expires ~= '' then gone = tonumber(expires) < now_ms
  else gone = redis.call('SISMEMBER', KEYS[4], field) == 0 end
  if gone then
    redis.call('HDEL', KEYS[3], field)
  else
    local stored = tonumber(redis.call('HGET', KEYS[1], 'checkpoints:' .. field) or '0')
    reserved = reserved + math.max(0, bytes - stored)
  end
end
local adding = new - old + tonumber(ARGV[5])
local limit = tonumber(ARGV[3])
if limit >= 0 and adding > 0 and used + reserved + adding > limit then
  return {0, used, reserved}
end
if ARGV[1] ~= '' then
  if new == 0 then redis.call('HDEL', KEYS[1], ARGV[1])
  else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
  used = redis.call('INCRBY', KEYS[2], new - old)
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5] .. ':' .. (now_ms + tonumber(ARGV[6])))
  reserved = reserved + tonumber(ARGV[5])
end
return {1, used, reserved}
"""

# KEYS: reserved. ARGV: pending field, job id. The pending reservation becomes the job's.
_ATTACH_LUA = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], string.match(value, '^(%d+)'))
return 1
"""


class StorageQuota:
    def __init__(self, redis_client, keys, max_bytes):
        self.redis = redis_client
        self.keys = keys
        self.max_bytes = max_bytes
        self._change = redis_client.register_script(_CHANGE_LUA)
        self._attach = redis_client.register_script(_ATTACH_LUA)

    def _keys(self, owner):
        return [self.keys.storage_items(owner), self.keys.storage_used(owner),
                self.keys.storage_reserved(owner), self.keys.owner_active(owner)]

    def usage(self, owner):
        """(bytes stored, bytes reserved by queued and running training jobs)."""
        _, used, reserved = self._change(keys=self._keys(owner),
                                         args=["", 0, -1, "", 0, 0])
        return used, reserved

    def charge(self, owner, item, size, *, what):
        """Record that `owner` stores `item` of `size` bytes, or StorageQuotaError when it
        would take them past the quota; `what` names it in the message ("this corpus")."""
        ok, used, reserved = self._change(keys=self._keys(owner),
                                          args=[item, size, self.max_bytes, "", 0, 0])
        if not ok:
            raise self._refusal(owner, what, size, used, reserved)

    def record(self, owner, item, size):
        """Record `item`'s size as it is now, without a check: what a running job has
        stored (it reserved room when it was submitted); 0 when it is gone."""
        self._change(keys=self._keys(owner), args=[item, size, -1, "", 0, 0])

    def release(self, owner, item):
        """`item` was deleted: its bytes are free again."""
        self.record(owner, item, 0)

    @contextlib.contextmanager
    def reserving(self, owner, size, *, what):
        """Reserve `size` bytes for a training job about to be created, or raise
        StorageQuotaError. The block calls the yielded `attach(job_id)` once the job
        exists; a block that raises before that gives the room back."""
        pending = f"pending:{secrets.token_hex(8)}"
        ok, used, reserved = self._change(keys=self._keys(owner),
                                          args=["", 0, self.max_bytes, pending, size,
                                                PENDING_MS])
        if not ok:
            raise self._refusal(owner, what, size, used, reserved)
        reserved_key = self.keys.storage_reserved(owner)
        attached = []

        def attach(job_id):
            self._attach(keys=[reserved_key], args=[pending, job_id])
            attached.append(job_id)

        try:
            yield attach
        except TextgenError as e:
            # A job stored whose message the broker did not take (503) still runs later.
            if not attached and e.extra.get("job_id"):
                attach(e.extra["job_id"])
            raise
        finally:
            if not attached:
                self.redis.hdel(reserved_key, pending)

    def _refusal(self, owner, what, size, used, reserved):
        reserved_note = (f", {_shown(reserved)} of it held for queued or running training "
                         "jobs" if reserved else "")
        return StorageQuotaError(
            f"{what} needs {_shown(size)}, but {owner} already uses "
            f"{_shown(used + reserved)} of {_shown(self.max_bytes)} "
            f"(TEXTGEN_MAX_STORAGE_MB){reserved_note}; delete corpora, models or finished "
            "jobs to free room", extra={
                "needed_bytes": size, "used_bytes": used, "reserved_bytes": reserved,
                "limit_bytes": self.max_bytes})


def _shown(size):
    """Bytes as a person reads them: 6.0 KB, 1.2 MB, 10.0 GB."""
    for unit, scale in (("GB", 1024 * MB), ("MB", MB), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} bytes"
