"""The scratch cache: a worker's only local disk use. Copies of stored models for Keras to
load, and private temporary directories for files on their way to or from the store.

    <root>/entries/<digest>/   one stored artifact's files (a model: its four files)
    <root>/tmp/<random>/       a write or a fetch in progress

Bounded by `max_bytes` (entries only; temporaries are removed as soon as used), least
recently used first out. It may be deleted at any time, even while a worker runs, and may
be shared by workers on one host: an entry appears by a rename of a complete directory and
leaves by a rename before its removal, so an entry that exists is complete, and a missing
one is fetched again.
"""

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from shared.stores.object_store import storage_error

# A temporary directory older than this was left by a crashed process: swept at eviction.
_STALE_TMP_S = 3600


def default_cache_root():
    """Where a cache lives when nothing says (tests, benchmarks): the system's temp dir."""
    return Path(tempfile.gettempdir()) / "textgen-cache"


class ScratchCache:
    def __init__(self, root, max_bytes=2048 * 1024 * 1024):
        self.root = Path(root)
        self.max_bytes = max_bytes

    def entry(self, store_url, key, fetch):
        """The local directory holding `key`'s files, fetched when it is not cached.

        `fetch()` returns {file name: bytes}. Keys must name immutable artifacts: an entry,
        once made, is never checked against the store again.
        """
        digest = hashlib.sha256(f"{store_url}/{key}".encode()).hexdigest()[:32]
        path = self.root / "entries" / digest
        if path.is_dir():
            _touch(path)
            return path
        files = fetch()
        # The cache may be deleted under us (allowed at any time): then once more.
        for tries in (1, 2):
            try:
                self._install(path, files)
                break
            except FileNotFoundError as e:
                if tries == 2:
                    raise storage_error(e, "fill the scratch cache") from e
            except OSError as e:
                raise storage_error(e, "fill the scratch cache") from e
        self.evict(keep=path)
        return path

    def _install(self, path, files):
        with self.scratch_dir() as tmp:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, path)
            except OSError:
                if not path.is_dir():
                    raise
                # Another process installed it meanwhile: same bytes, keep theirs.
        _touch(path)

    @contextlib.contextmanager
    def scratch_dir(self):
        """A private empty directory under the cache, removed with what it holds on exit."""
        tmp_root = self.root / "tmp"
        for tries in (1, 2):
            try:
                tmp_root.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(dir=tmp_root))
                break
            except FileNotFoundError as e:  # the cache deleted between the two calls
                if tries == 2:
                    raise storage_error(e, "make a scratch directory") from e
            except OSError as e:
                raise storage_error(e, "make a scratch directory") from e
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def evict(self, keep=None):
        """Remove least recently used entries until the entries fit in max_bytes."""
        entries = []
        with contextlib.suppress(FileNotFoundError):
            for path in (self.root / "entries").iterdir():
                with contextlib.suppress(FileNotFoundError):  # evicted by another process
                    entries.append((path.stat().st_mtime, _size(path), path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            if path != keep:
                _remove(path, self.root / "tmp")
                total -= size
        self._sweep_stale_tmp()

    def _sweep_stale_tmp(self):
        cutoff = time.time() - _STALE_TMP_S
        with contextlib.suppress(FileNotFoundError):
            for path in (self.root / "tmp").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < cutoff:
                        shutil.rmtree(path, ignore_errors=True)


def _touch(path):
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)  # mtime is the recency eviction orders by


def _size(directory):
    total = 0
    for file in directory.iterdir():
        with contextlib.suppress(FileNotFoundError):
            total += file.stat().st_size
    return total


def _remove(path, tmp_root):
    """Rename out of entries/ first, so that no reader finds it half removed."""
    tmp_root.mkdir(parents=True, exist_ok=True)
    doomed = tmp_root / f"evicted-{path.name}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return  # another process evicted it first
    shutil.rmtree(doomed, ignore_errors=True)
