"""Corpus and model records: small JSON hashes in Redis, read and written only here.

The files themselves live in the artifact store (shared/artifacts.py); these records hold
what the API answers with and the lineage that ties a model to its job and corpus.
"""

from shared.errors import NotFoundError
from shared.redis_db import decode_fields, encode_fields


class RecordStore:
    """Records of one kind ("corpus", "model"), keyed by `key_of(record_id)`."""

    def __init__(self, redis_client, key_of, kind):
        self.redis = redis_client
        self.key_of = key_of
        self.kind = kind

    def put(self, record):
        self.redis.hset(self.key_of(record["id"]), mapping=encode_fields(record))
        return record

    def get(self, record_id, *, field=None):
        """The record, or NotFoundError naming `field` (the request field that held the id)."""
        raw = self.redis.hgetall(self.key_of(record_id)) if record_id else {}
        if not raw:
            raise NotFoundError(f"no {self.kind} with id {record_id!r}", field=field)
        return decode_fields(raw)


def corpus_records(redis_client, keys):
    return RecordStore(redis_client, keys.corpus, "corpus")


def model_records(redis_client, keys):
    return RecordStore(redis_client, keys.model, "model")
