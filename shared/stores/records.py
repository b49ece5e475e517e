"""Corpus and model records: small JSON hashes in Redis, read and written only here.

The files themselves live in the artifact store (shared/stores/artifacts.py); these records hold
what the API answers with and the lineage that ties a model to its job and corpus. Every
record has an `owner`, and each owner's records are listed from an index of their own.
A record of another owner is not found, exactly like one that never existed.
"""

import functools

from shared.runtime.clock import is_id
from shared.contracts.errors import NotFoundError
from shared.stores.pages import creation_score, newest_first
from shared.runtime.redis_db import decode_fields, encode_fields


class RecordStore:
    """Records of one kind ("corpus", "model"), whose ids are `<prefix>_<hex>`, keyed by
    `key_of(record_id)` and listed from the owner index `index` ("corpora", "models").
    A kind whose records never change once written may keep `cached` of them per process
    (see `get`)."""

    def __init__(self, redis_client, keys, key_of, kind, prefix, index, cached=0):
        self.redis = redis_client
        self.keys = keys
        self.key_of = key_of
        self.kind = kind
        self.prefix = prefix
        self.index = index
        # Exceptions are not cached: an id not found is read again next time.
        self._read_cached = functools.lru_cache(cached)(self._read) if cached else None

    def put(self, record, pipe=None):
        """Store a new record and list it under its owner; with `pipe` (a MULTI the caller
        executes), as part of the caller's step."""
        step = pipe if pipe is not None else self.redis.pipeline()
        step.hset(self.key_of(record["id"]), mapping=encode_fields(record))
        step.zadd(self.keys.owner_index(record["owner"], self.index),
                  {record["id"]: creation_score()})
        if pipe is None:
            step.execute()
        return record

    def get(self, record_id, owner=None, *, field=None, cached=False):
        """The record, or NotFoundError naming `field` (the request field that held the id).

        With `owner`, another owner's record is not found either. With `cached` (a store
        built with `cached`), the record as this process read it before, without a round
        trip to Redis: it may have been deleted since, so a caller that stores something
        that needs it checks that it still exists in the storing step (`required`), and
        leaves the record unchanged (others are handed the same one).
        """
        read = self._read_cached if cached and self._read_cached else self._read
        try:
            record = read(record_id)
        except KeyError:
            record = None
        if record is None or (owner is not None and record.get("owner") != owner):
            raise self._not_found(record_id, field) from None
        return record

    def _read(self, record_id):
        """The record; KeyError when there is none (raised, so that no cache keeps it)."""
        raw = self.redis.hgetall(self.key_of(record_id)) if is_id(record_id, self.prefix) \
            else {}
        if not raw:
            raise KeyError(record_id)
        return decode_fields(raw)

    def _not_found(self, record_id, field):
        return NotFoundError(f"no {self.kind} with id {record_id!r}", field=field)

    def required(self, record_id, field=None):
        """(key, error): what a storing step that needs the record checks in the same
        step, and the error that is the answer when the record is gone
        (shared/stores/admission.py)."""
        return self.key_of(record_id), self._not_found(record_id, field)

    def get_many(self, record_ids):
        pipe = self.redis.pipeline()
        for record_id in record_ids:
            pipe.hgetall(self.key_of(record_id))
        return [decode_fields(raw) if raw else None for raw in pipe.execute()]

    def page(self, owner, after=None, limit=50, keep=None):
        return newest_first(self.redis, self.keys.owner_index(owner, self.index),
                            self.get_many, after=after, limit=limit, keep=keep)

    def count(self, owner):
        return self.redis.zcard(self.keys.owner_index(owner, self.index))

    def delete(self, record, pipe=None):
        step = pipe if pipe is not None else self.redis.pipeline()
        step.delete(self.key_of(record["id"]))
        step.zrem(self.keys.owner_index(record["owner"], self.index), record["id"])
        if pipe is None:
            step.execute()


# Model records a process keeps (a few KB each: spec, alphabet): a model's record is written
# once, by the step that ends its training job, and never changed, only deleted.
MODELS_CACHED = 1024


def model_records(redis_client, keys):
    return RecordStore(redis_client, keys, keys.model, "model", "mdl", "models",
                       cached=MODELS_CACHED)
