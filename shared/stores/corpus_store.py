"""The corpus store: corpus records, and their texts shared across owners, each text stored
once per hash and removed with the last corpus that has it.

A text lives at corpora/<sha256>/ in the artifact store, and every corpus record that has
it is in the set Keys.corpus_refs(sha256). Two steps must never interleave: an upload
finding the text stored and adding its reference, and a delete finding no reference left
and removing the text (an upload in between would keep a record whose text is gone). The
file is outside Redis, so no script can make both one step: each runs under a lock per
text (redis-py's Lock: a random token with an expiry, released only by its holder). A
record and its reference are written, and deleted, in one MULTI step. Each corpus is
charged to its owner's storage quota (shared/stores/storage_quota.py) while it exists.
"""

import hashlib
import logging

import redis

from shared.runtime.clock import new_id, utc_now_iso
from shared.text.corpus_text import text_sha256
from shared.contracts.errors import ServiceUnavailableError
from shared.stores.records import RecordStore

log = logging.getLogger(__name__)

# Corpus records a process keeps for training submissions: a corpus record is written once,
# by its upload, and never changed, only deleted. Under a KB each for most texts, but the
# alphabet of a text in many scripts makes one tens of KB: 256 bound that to a few MB, and
# a miss costs one round trip.
CORPORA_CACHED = 256

# How long a holder may keep a text's lock, in seconds: writing the largest upload (50 MB
# by default) to S3 takes seconds. Past it the lock expires, so a dead holder blocks no one.
LOCK_S = 60
# How long a step waits for the other one on the same text (a write or a delete, each
# seconds at most) before giving up, in seconds.
WAIT_S = 10
POLL_S = 0.01  # how often a waiting step tries the lock again, in seconds


class CorpusStore:
    def __init__(self, redis_client, keys, artifacts, storage):
        self.redis = redis_client
        self.keys = keys
        self.artifacts = artifacts  # shared.stores.artifacts.ArtifactStore: the texts
        self.storage = storage  # shared.stores.storage_quota.StorageQuota
        self.records = RecordStore(redis_client, keys, keys.corpus, "corpus", "cor", "corpora",
                                   cached=CORPORA_CACHED)

    @staticmethod
    def new_record(owner, name, data, text, encoding, **origin):
        """The record of a corpus of `text`, decoded (as `encoding`) from the uploaded
        bytes `data`; `origin` says where it came from (source: upload or gutenberg)."""
        return {
            "id": new_id("cor"),
            "owner": owner,
            "name": name,
            "bytes": len(data),
            "chars": len(text),
            "encoding": encoding,
            "vocab_size": len(set(text)),
            "alphabet": "".join(sorted(set(text))),
            "sha256": text_sha256(text),
            "upload_sha256": hashlib.sha256(data).hexdigest(),
            "created_at": utc_now_iso(),
            **origin,
        }

    def get(self, corpus_id, owner=None, *, field=None, cached=False):
        """The record (RecordStore.get: with `cached`, as this process read it before; it
        may be gone since, so the step that stores what needs it checks `required`)."""
        return self.records.get(corpus_id, owner, field=field, cached=cached)

    def required(self, corpus_id, field=None):
        return self.records.required(corpus_id, field=field)

    def page(self, owner, after=None, limit=50, keep=None):
        return self.records.page(owner, after=after, limit=limit, keep=keep)

    def count(self, owner):
        return self.records.count(owner)

    def add(self, record, text):
        """Store the corpus `record` and its `text` (once per hash), charged to its owner.
        StorageQuotaError (507) past the owner's quota, InsufficientStorageError (507) when
        the artifact store is full; 503 when another upload or a delete of the same text
        holds it for longer than WAIT_S."""
        owner, item = record["owner"], _item(record)
        # Charged as put_corpus stores it: UTF-8.
        self.storage.charge(owner, item, len(text.encode("utf-8")), what="this corpus")
        try:
            self._store(record, text)
        except Exception:
            self.storage.release(owner, item)
            raise
        return record

    def _store(self, record, text):
        sha256 = record["sha256"]
        try:
            with self._text_lock(sha256):
                self.artifacts.put_corpus(sha256, text)  # a no-op when it is stored already
                pipe = self.redis.pipeline()
                self.records.put(record, pipe)
                pipe.sadd(self.keys.corpus_refs(sha256), record["id"])
                pipe.execute()
        except redis.exceptions.LockError as e:
            raise ServiceUnavailableError(
                "the same text is being stored or deleted right now; try again",
                headers={"Retry-After": "5"}) from e

    def remove(self, record):
        """Delete the corpus `record`, and its text once no corpus has it; its bytes leave
        its owner's quota."""
        sha256 = record["sha256"]
        refs = self.keys.corpus_refs(sha256)
        pipe = self.redis.pipeline()
        self.records.delete(record, pipe)
        pipe.srem(refs, record["id"])
        pipe.scard(refs)
        if not pipe.execute()[-1]:
            self._remove_text(sha256)
        self.storage.release(record["owner"], _item(record))

    def _remove_text(self, sha256):
        try:
            with self._text_lock(sha256):
                if not self.redis.scard(self.keys.corpus_refs(sha256)):  # none added since
                    self.artifacts.delete_corpus(sha256)
        except redis.exceptions.LockError:
            # An upload of the same text holds it: the text stays (its next delete removes
            # it).
            log.warning("corpus text %s kept: an upload of it held it past %d s", sha256,
                        WAIT_S)

    def _text_lock(self, sha256):
        """The text's lock, waited for up to WAIT_S (else LockError). Released at the end
        of the step; a step that outlived LOCK_S has nothing left to release, and that is
        no error (the step itself is done)."""
        return self.redis.lock(self.keys.corpus_lock(sha256), timeout=LOCK_S,
                               sleep=POLL_S, blocking_timeout=WAIT_S,
                               raise_on_release_error=False)


def _item(record):
    """The corpus as the storage quota counts it."""
    return f"corpus:{record['id']}"
