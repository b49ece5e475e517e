"""Atomic, durable writes on a local disk: a temporary file beside the target, fsync, rename,
then fsync of the directory.

Hand-written because neither the standard library nor fsspec's local file system offers
it: fsspec's put_file is shutil.copyfile (the target is visible half-written) and its
transactions rename without any fsync. Without the fsyncs a crash after a record in Redis
points at a file can leave that file empty or absent; without the rename a reader can see
half of it. A crash leaves at most a `.<name>.<random>.tmp` file, which readers ignore.
"""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def write_bytes_atomic(path, data):
    """`path` holds `data`, whole and on disk, or is as it was."""
    _write_atomic(Path(path), lambda f: f.write(data))


def write_text_atomic(path, text):
    write_bytes_atomic(path, text.encode("utf-8"))


def copy_atomic(source, path):
    """`path` holds a copy of the local file `source`, whole and on disk, or is as it was."""
    with open(source, "rb") as src:
        _write_atomic(Path(path), lambda f: shutil.copyfileobj(src, f, 1024 * 1024))


def _write_atomic(path, fill):
    make_dirs_durable(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def make_dirs_durable(directory):
    """mkdir -p, with each new directory's entry fsynced into its parent."""
    directory = Path(directory)
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
            new.mkdir()
        fsync_dir(new.parent)


def fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
