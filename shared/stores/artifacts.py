"""The artifact store: corpora, models and checkpoints, on a local disk or in S3.

Layout under TEXTGEN_ARTIFACTS_URL (file:///path, the default being TEXTGEN_DATA_DIR, or
s3://bucket/prefix), the same for both backends:

    corpora/<sha256>/text.txt              the decoded, normalized corpus (UTF-8, LF)
    models/<model_id>/a<attempt>/          model.keras, vocab.json, config.json, metrics.json
    checkpoints/<job_id>/                  epoch files and state.json (checkpoint_store.py)
    results/<job_id>/a<attempt>.json       a generation job's samples (results.py)

A reader only finds what a finished write published. Each object is whole or absent
(shared/stores/object_store.py). A model is published file by file under its attempt's prefix,
and only the model record in Redis, written after publish_model returns, makes it
findable: readers build the prefix from the attempt the record names, so a retried job
never writes over files a reader may be using. Paths are built from ids we generate and
hashes we compute, never from a user's file name. Nothing above this module knows which
backend is in use.
"""

import contextlib
import re

from shared.stores.checkpoint_store import CheckpointStore
from shared.contracts.errors import InsufficientStorageError, StorageFullError
from shared.stores.object_store import open_objects, storage_error
from shared.stores.scratch_cache import ScratchCache

# Ids and hashes are lowercase hex with an optional short prefix; anything else is refused
# before it can reach a key (no '..', no separators).
_SAFE_NAME = re.compile(r"^[a-z0-9_]{1,80}$")

MODEL_FILES = ("model.keras", "vocab.json", "config.json", "metrics.json")


def _checked(name):
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe artifact name: {name!r}")
    return name


def _model_prefix(model_id, attempt):
    return f"models/{_checked(model_id)}/a{int(attempt)}"


def _result_key(job_id, attempt):
    return f"results/{_checked(job_id)}/a{int(attempt)}.json"


def open_artifact_store(settings):
    """The store TEXTGEN_ARTIFACTS_URL names, with the scratch cache of this host."""
    url = settings.artifacts_url or settings.data_dir.as_uri()
    cache_dir = settings.cache_dir or settings.data_dir / "cache"
    return ArtifactStore(open_objects(url, settings.s3_endpoint_url, settings.s3_public_url),
                         ScratchCache(cache_dir, settings.cache_max_bytes))


class ArtifactStore:
    def __init__(self, objects, cache):
        self.objects = objects  # shared.stores.object_store.Objects
        self.cache = cache  # shared.stores.scratch_cache.ScratchCache: this host's copies

    # Corpora: written by the API on upload, read by training workers.

    def put_corpus(self, sha256, text):
        """Store a corpus once per hash; InsufficientStorageError when the store is full."""
        key = f"corpora/{_checked(sha256)}/text.txt"
        if self.objects.exists(key):
            return  # the same text uploaded again: same hash, same bytes
        try:
            self.objects.write_bytes(key, text.encode("utf-8"))
        except StorageFullError as e:
            raise InsufficientStorageError(
                "the artifact store is full; the corpus was not stored") from e

    def read_corpus(self, sha256):
        key = f"corpora/{_checked(sha256)}/text.txt"
        return self.objects.read_bytes(key).decode("utf-8")

    def delete_corpus(self, sha256):
        self.objects.delete_prefix(f"corpora/{_checked(sha256)}")

    # Models: published by training workers, read by generation workers and the API.

    def publish_model(self, model_id, attempt, local_dir):
        """Store the finished model in `local_dir` (MODEL_FILES) as this attempt's files.

        Each file is whole in the store when this returns; the caller then writes the model
        record, the commit point that lets readers find them.
        """
        prefix = _model_prefix(model_id, attempt)
        for name in MODEL_FILES:
            self.objects.upload(local_dir / name, f"{prefix}/{name}")

    @contextlib.contextmanager
    def scratch_dir(self):
        """A private local directory for files on their way into the store (a model before
        publish_model), removed on exit. An OSError while writing in it (a full or
        read-only scratch disk) is a StorageError."""
        with self.cache.scratch_dir() as tmp:
            try:
                yield tmp
            except OSError as e:
                raise storage_error(e, "write in the scratch cache") from e

    def model_file(self, model_id, attempt, name):
        """One of MODEL_FILES, as a StoredFile to serve; ArtifactMissingError if absent."""
        if name not in MODEL_FILES:
            raise ValueError(f"not a model file: {name!r}")
        return self.objects.stored(f"{_model_prefix(model_id, attempt)}/{name}")

    def local_model_dir(self, model_id, attempt):
        """A local directory with the model's files, for Keras to load: this host's copy in
        the scratch cache, fetched from the store when absent."""
        prefix = _model_prefix(model_id, attempt)
        return self.cache.entry(self.objects.url, prefix, lambda: {
            name: self.objects.read_bytes(f"{prefix}/{name}") for name in MODEL_FILES})

    def discard_model_attempt(self, model_id, attempt):
        """Delete one attempt's files: published, then refused registration (the job was
        cancelled or handed on meanwhile), so no record will ever name them."""
        self.objects.delete_prefix(_model_prefix(model_id, attempt))

    def delete_model(self, model_id):
        """Delete every attempt's files of the model."""
        self.objects.delete_prefix(f"models/{_checked(model_id)}")

    # Checkpoints: one training job's, written and read by its attempts.

    def checkpoints(self, job_id, attempt, on_change=None):
        """The checkpoint store of the job, as `attempt` writes and reads it; `on_change`
        hears the bytes it holds after each change."""
        return CheckpointStore(self.objects, f"checkpoints/{_checked(job_id)}", attempt,
                               self.cache, on_change)

    def model_bytes(self, model_id, attempt):
        """What the attempt's model files take in the store."""
        return sum(self.objects.sizes(_model_prefix(model_id, attempt)).values())

    # Generation results: written by generation workers, served by the API.

    def put_result(self, job_id, attempt, data):
        """Store a generation job's samples (JSON bytes) as this attempt's result."""
        self.objects.write_bytes(_result_key(job_id, attempt), data)

    def result_file(self, job_id, attempt):
        """The result as a StoredFile to serve; ArtifactMissingError if absent."""
        return self.objects.stored(_result_key(job_id, attempt))

    def discard_result(self, job_id, attempt):
        """Delete one attempt's result, stored then refused (the job ended meanwhile)."""
        self.objects.delete(_result_key(job_id, attempt))

    def delete_job_files(self, job_id):
        """Delete what a job stored besides its model: checkpoints, results."""
        self.objects.delete_prefix(f"checkpoints/{_checked(job_id)}")
        self.objects.delete_prefix(f"results/{_checked(job_id)}")
