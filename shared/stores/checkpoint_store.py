"""One training job's checkpoints in the artifact store, and their commit point.

    checkpoints/<job_id>/<name>        files the training code names and writes once each
                                       (worker/checkpoints.py: epoch-0003-a2.keras)
    checkpoints/<job_id>/state.json    written last, whole: names the files a resume needs

state.json is replaced in one step (a rename on disk, one PUT in S3), so a reader finds
the previous state or the next, and every file either names was stored before it. What
the state says, and which files to prune, is the training code's business. After every
write and delete, `on_change` (if given) hears the job's stored bytes: its owner's
storage quota counts them (shared/stores/storage_quota.py).
"""

import contextlib
import json

from shared.stores.object_store import LocalObjects, storage_error
from shared.stores.scratch_cache import ScratchCache, default_cache_root

STATE = "state.json"


class CheckpointStore:
    def __init__(self, objects, prefix, attempt, cache, on_change=None):
        self.objects = objects
        self.prefix = prefix  # "" when the store's root is the job's directory itself
        self.attempt = attempt  # the job's attempt writing through this store (1-based)
        self.cache = cache  # scratch space for files on their way in and out
        self.on_change = on_change  # called with the bytes stored after each change

    def _changed(self):
        if self.on_change is not None:
            self.on_change(sum(self.objects.sizes(self.prefix).values()))

    @classmethod
    def in_directory(cls, path, attempt=1):
        """A job's checkpoints in a plain local directory (tests and benchmarks)."""
        return cls(LocalObjects(path), "", attempt, ScratchCache(default_cache_root()))

    def _key(self, name):
        return f"{self.prefix}/{name}" if self.prefix else name

    def read_state(self):
        """The committed state, or None when nothing was ever committed."""
        key = self._key(STATE)
        if not self.objects.exists(key):
            return None
        return json.loads(self.objects.read_bytes(key))

    def write_state(self, state):
        """Commit: from now on a resume reads `state` (and the files it names)."""
        # NaN losses (a diverged run) stay NaN: Python reads them back, nothing else does.
        data = (json.dumps(state, indent=2) + "\n").encode("utf-8")
        self.objects.write_bytes(self._key(STATE), data)
        self._changed()

    def save_file(self, name, write):
        """Store the file `write(local_path)` makes (Keras' model.save), whole, as `name`."""
        for tries in (1, 2):
            try:
                with self.cache.scratch_dir() as tmp:
                    write(tmp / name)
                    self.objects.upload(tmp / name, self._key(name))
                self._changed()
                return
            except FileNotFoundError as e:
                # The scratch cache was deleted while `write` ran (allowed at any time).
                if tries == 2:
                    raise storage_error(e, f"write {name} in the scratch cache") from e
            except OSError as e:  # the scratch disk is full or read-only
                raise storage_error(e, f"write {name} in the scratch cache") from e

    @contextlib.contextmanager
    def fetched(self, name):
        """A local copy of the stored file `name`, removed on exit; ArtifactMissingError
        when it is not stored."""
        data = self.objects.read_bytes(self._key(name))
        with self.cache.scratch_dir() as tmp:
            try:
                (tmp / name).write_bytes(data)
            except OSError as e:
                raise storage_error(e, f"write {name} in the scratch cache") from e
            yield tmp / name

    def names(self):
        """The stored files' names, state.json excluded."""
        return [name for name in self.objects.list(self.prefix) if name != STATE]

    def delete(self, name):
        self.objects.delete(self._key(name))
        self._changed()
