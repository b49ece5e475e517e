"""The per-owner storage quota (TEXTGEN_MAX_STORAGE_MB): what each owner keeps in the
artifact store, counted in Redis as things are stored and deleted.

Per owner, three keys under the owner's hash tag, changed only by scripts (which also
read the owner's active jobs, under the same tag):

    storage-items     item -> bytes: "corpus:<id>", "model:<id>", "checkpoints:<job id>"
    storage-used      the sum of the items
    storage-reserved  training job id -> the bytes it may store (its checkpoints and
                      model, estimated at submission: shared/sizing/model_storage.py)

An item is set to its size (not added to), so a recount after every checkpoint is exact
however often it runs, and deleting sets it to nothing. A training job's reservation
counts only what its checkpoints have not used yet, and goes once the job has ended (its
model and checkpoints are then items of their own): a script drops the reservation of a
job that left the owner's active set (shared/stores/scheduler.py), one set lookup inside
Redis per reservation rather than a read of each reserving job's record on every
submission. A job's reservation is checked and written by the step that stores the job
(shared/stores/admission.py, with `reservation`), so two submissions at once cannot both
slip under the quota, and a job never exists without its reservation.

Corpora are charged to each owner who uploads one, though the store keeps one copy of a
text: an owner's usage does not depend on what others upload.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from shared.contracts.errors import StorageQuotaError

MB = 1024 * 1024

# What the scripts that check the quota share (here, and the admission's): the bytes the
# owner's training jobs still hold in reservation. KEYS passed in: items, reserved, the
# owner's active jobs. A reservation whose job is no longer active (it ended, or is gone)
# is dropped on the way; so is any other field (the pending reservations of versions before
# 2026-12-08, "pending:<token>", never active).
LIBRARY = """
local function storage_reserved(items_key, reserved_key, active_key)
  local reserved = 0
  local entries = redis.call('HGETALL', reserved_key)
  for i = 1, #entries, 2 do
    local field = entries[i]
    if redis.call('SISMEMBER', active_key, field) == 0 then
      redis.call('HDEL', reserved_key, field)
    else
      local bytes = tonumber(string.match(entries[i + 1], '^%d+'))
      local stored = tonumber(redis.call('HGET', items_key, 'checkpoints:' .. field) or '0')
      reserved = reserved + math.max(0, bytes - stored)
    end
  end
  return reserved
end
"""

# KEYS: items, used, reserved, the owner's active jobs. ARGV: item (or "" for none), its
# new size in bytes, the limit in bytes (-1: record without checking). Returns {1, used,
# reserved} when written, {0, used, reserved} when the change would pass the limit
# (nothing written).
_CHANGE_LUA = LIBRARY + """
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local old = 0
local new = 0
if ARGV[1] ~= '' then
  old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  new = tonumber(ARGV[2])
end
local reserved = storage_reserved(KEYS[1], KEYS[3], KEYS[4])
local adding = new - old
local limit = tonumber(ARGV[3])
if limit >= 0 and adding > 0 and used + reserved + adding > limit then
  return {0, used, reserved}
end
if ARGV[1] ~= '' then
  if new == 0 then redis.call('HDEL', KEYS[1], ARGV[1])
  else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
  used = redis.call('INCRBY', KEYS[2], new - old)
end
return {1, used, reserved}
"""


@dataclass(frozen=True)
class Reservation:
    """Room a training job about to be stored reserves under its owner's quota: the
    storing step (shared/stores/admission.py) checks it against `limit_bytes` with the
    quota's keys (items, used, reserved) and writes it under the job's id, or raises
    `refusal(used, reserved)`."""

    keys: tuple
    size: int
    limit_bytes: int
    refusal: Callable


class StorageQuota:
    def __init__(self, redis_client, keys, max_bytes):
        self.redis = redis_client
        self.keys = keys
        self.max_bytes = max_bytes
        self._change = redis_client.register_script(_CHANGE_LUA)

    def _keys(self, owner):
        return [self.keys.storage_items(owner), self.keys.storage_used(owner),
                self.keys.storage_reserved(owner), self.keys.owner_active(owner)]

    def usage(self, owner):
        """(bytes stored, bytes reserved by queued and running training jobs)."""
        _, used, reserved = self._change(keys=self._keys(owner),
                                         args=["", 0, -1])
        return used, reserved

    def charge(self, owner, item, size, *, what):
        """Record that `owner` stores `item` of `size` bytes, or StorageQuotaError when it
        would take them past the quota; `what` names it in the message ("this corpus")."""
        ok, used, reserved = self._change(keys=self._keys(owner),
                                          args=[item, size, self.max_bytes])
        if not ok:
            raise self._refusal(owner, what, size, used, reserved)

    def record(self, owner, item, size):
        """Record `item`'s size as it is now, without a check: what a running job has
        stored (it reserved room when it was submitted); 0 when it is gone."""
        self._change(keys=self._keys(owner), args=[item, size, -1])

    def release(self, owner, item):
        """`item` was deleted: its bytes are free again."""
        self.record(owner, item, 0)

    def reservation(self, owner, size, *, what):
        """The Reservation of `size` bytes for a training job of `owner`, which the step
        that stores the job takes, or refuses with StorageQuotaError (507) naming
        `what` ("this training job")."""
        return Reservation(
            keys=(self.keys.storage_items(owner), self.keys.storage_used(owner),
                  self.keys.storage_reserved(owner)),
            size=size, limit_bytes=self.max_bytes,
            refusal=functools.partial(self._refusal, owner, what, size))

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
