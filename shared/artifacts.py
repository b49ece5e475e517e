"""The artifact store: corpora, models and checkpoints under one data directory.

Layout (shared by every worker; a volume in Compose):

    corpora/<sha256>/text.txt            the decoded, normalized corpus (UTF-8, LF)
    models/<model_id>/                   model.keras, vocab.json, config.json, metrics.json
    checkpoints/<job_id>/                last.keras, best.keras, state.json

Every write is atomic: a temporary file (or directory) in the same parent, then a rename,
so a reader never sees half a file and a crash leaves only a temporary to sweep. Paths are
built from ids we generate and hashes we compute, never from a user's file name.
"""

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from shared.errors import ArtifactMissingError

# Ids and hashes are lowercase hex with an optional short prefix; anything else is refused
# before it can reach a path (no '..', no separators).
_SAFE_NAME = re.compile(r"^[a-z0-9_]{1,80}$")


def _checked(name):
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe artifact name: {name!r}")
    return name


class ArtifactStore:
    """Paths and atomic writes under `root` (the TEXTGEN_DATA_DIR)."""

    def __init__(self, root):
        self.root = Path(root)

    def corpus_path(self, sha256):
        return self.root / "corpora" / _checked(sha256) / "text.txt"

    def model_dir(self, model_id):
        return self.root / "models" / _checked(model_id)

    def checkpoint_dir(self, job_id):
        return self.root / "checkpoints" / _checked(job_id)

    def read_corpus(self, sha256):
        path = self.corpus_path(sha256)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise ArtifactMissingError(f"corpus {sha256} is not in the artifact store") from e

    def write_corpus(self, sha256, text):
        """Store a corpus once; the same text uploaded again reuses the file."""
        path = self.corpus_path(sha256)
        if not path.exists():
            atomic_write_bytes(path, text.encode("utf-8"))
        return path

    def delete_corpus(self, sha256):
        shutil.rmtree(self.corpus_path(sha256).parent, ignore_errors=True)

    def read_model_file(self, record, name):
        """The bytes of one file of a registered model (its record)."""
        path = self.model_dir(record["id"]) / name
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise ArtifactMissingError(f"model {record['id']} has no {name} in the "
                                       "artifact store") from e

    def delete_model(self, model_id):
        shutil.rmtree(self.model_dir(model_id), ignore_errors=True)

    def delete_checkpoints(self, job_id):
        shutil.rmtree(self.checkpoint_dir(job_id), ignore_errors=True)


def atomic_write_bytes(path, data):
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(final_path):
    """Yield a temporary directory beside `final_path`; rename it into place on success.

    Used for a model: its four files appear together or not at all. If `final_path`
    already exists it is replaced (a retried job writing the same model id again).
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final_path.parent, prefix=f".{final_path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if final_path.exists():
            shutil.rmtree(final_path)
        os.replace(tmp, final_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
