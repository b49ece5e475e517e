"""Corpus texts shared across owners: stored once per hash, removed with the last corpus.

A text lives at corpora/<sha256>/ in the artifact store, and every corpus record that has
it is in the set Keys.corpus_refs(sha256). Two steps must never interleave: an upload
finding the text stored and adding its reference, and a delete finding no reference left
and removing the text (an upload in between would keep a record whose text is gone). The
file is outside Redis, so no script can make both one step: each runs under a lock per
text (redis-py's Lock: a random token with an expiry, released only by its holder). A
record and its reference are written, and deleted, in one MULTI step.
"""

import logging

import redis

from shared.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

# How long a holder may keep a text's lock, in seconds: writing the largest upload (50 MB
# by default) to S3 takes seconds. Past it the lock expires, so a dead holder blocks no one.
LOCK_S = 60
# How long a step waits for the other one on the same text (a write or a delete, each
# seconds at most) before giving up, in seconds.
WAIT_S = 10
POLL_S = 0.01  # how often a waiting step tries the lock again, in seconds


def store_corpus(svc, record, text):
    """Store `text` (once per hash) and the corpus `record` that has it, and reference it.
    InsufficientStorageError (507) when the store is full; 503 when another upload or a
    delete of the same text holds it for longer than WAIT_S."""
    sha256 = record["sha256"]
    try:
        with _text_lock(svc, sha256):
            svc.artifacts.put_corpus(sha256, text)  # a no-op when it is stored already
            pipe = svc.redis.pipeline()
            svc.corpora.put(record, pipe)
            pipe.sadd(svc.keys.corpus_refs(sha256), record["id"])
            pipe.execute()
    except redis.exceptions.LockError as e:
        raise ServiceUnavailableError(
            "the same text is being stored or deleted right now; try again",
            headers={"Retry-After": "5"}) from e
    return record


def remove_corpus(svc, record):
    """Delete the corpus `record`, and its text once no corpus has it."""
    sha256 = record["sha256"]
    refs = svc.keys.corpus_refs(sha256)
    pipe = svc.redis.pipeline()
    svc.corpora.delete(record, pipe)
    pipe.srem(refs, record["id"])
    pipe.scard(refs)
    if pipe.execute()[-1]:
        return
    try:
        with _text_lock(svc, sha256):
            if not svc.redis.scard(refs):  # no upload referenced it since
                svc.artifacts.delete_corpus(sha256)
    except redis.exceptions.LockError:
        # An upload of the same text holds it: the text stays (its next delete removes it).
        log.warning("corpus text %s kept: an upload of it held it past %d s", sha256, WAIT_S)


def _text_lock(svc, sha256):
    """The text's lock, waited for up to WAIT_S (else LockError). Released at the end of
    the step; a step that outlived LOCK_S has nothing left to release, and that is no
    error (the step itself is done)."""
    return svc.redis.lock(svc.keys.corpus_lock(sha256), timeout=LOCK_S,
                          sleep=POLL_S, blocking_timeout=WAIT_S,
                          raise_on_release_error=False)
