"""Per-owner slots for what holds a connection (event streams and `Prefer: wait`; large
downloads): a cap that a vanished client or a killed API process cannot leak.

A held connection takes a slot: a member of its owner's sorted set (one set an owner per
kind, Keys.stream_slots or Keys.download_slots), scored by when it expires (Redis' clock,
so every API host agrees). A live connection's slot is renewed as it goes; one whose
process died stops being renewed, and its slot expires within SLOT_TTL_S, so no owner is
ever locked out by connections that are gone. A counter that a crash never decrements
would do just that.
"""

import secrets

# Renewed every RENEW_S (an event stream's heartbeat period); three missed renewals and
# the slot is free again.
RENEW_S = 15.0
SLOT_TTL_S = 3 * RENEW_S

# Drop the owner's expired slots, then take one if fewer than the cap (ARGV[2]; -1: no
# cap, for a renewal) are held. One script: two requests cannot both take the last slot.
_TAKE_LUA = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl_ms = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local cap = tonumber(ARGV[2])
if cap >= 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1])
        and redis.call('ZCARD', KEYS[1]) >= cap then
    return 0
end
redis.call('ZADD', KEYS[1], now_ms + ttl_ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return 1
"""


class OwnerSlots:
    def __init__(self, redis_client, key_of, ttl_s=SLOT_TTL_S):
        """Slots in the sorted set `key_of(owner)` (Keys.stream_slots, ...)."""
        self.redis = redis_client
        self.key_of = key_of
        self.ttl_ms = int(ttl_s * 1000)
        self._take = redis_client.register_script(_TAKE_LUA)

    def take(self, owner, cap):
        """A new slot's id, or None when the owner holds `cap` live slots already."""
        slot = secrets.token_hex(8)
        taken = self._take(keys=[self.key_of(owner)], args=[slot, cap, self.ttl_ms])
        return slot if taken else None

    def renew(self, owner, slot):
        """Push the slot's expiry on; a slot that expired meanwhile is taken again."""
        self._take(keys=[self.key_of(owner)], args=[slot, -1, self.ttl_ms])

    def held(self, owner):
        """How many live slots the owner holds (expired ones are not counted)."""
        seconds, micros = self.redis.time()  # Redis' clock, as the scores are
        now_ms = seconds * 1000 + micros // 1000
        return self.redis.zcount(self.key_of(owner), f"({now_ms}", "+inf")

    def release(self, owner, slot):
        self.redis.zrem(self.key_of(owner), slot)
