"""Objects: bytes under '/'-separated keys in one place, a local directory or an S3 prefix.

The one module that knows the two backends; shared/artifacts.py builds the keys. Both go
through fsspec (s3fs for S3). A write is whole or absent: an S3 PUT, and a multipart
upload (s3fs aborts it on failure), only appears complete; on a local disk the write goes
through shared/local_files (temp, fsync, rename). Failures are translated here, at the
boundary: a missing key is ArtifactMissingError, anything else the store or the network
refuses is StorageError (StorageFullError when it is out of room).
"""

import contextlib
import errno
from pathlib import Path
from urllib.parse import unquote, urlsplit

import botocore.exceptions
from fsspec.implementations.local import LocalFileSystem

from shared.errors import ArtifactMissingError, StorageError, StorageFullError
from shared.local_files import copy_atomic, write_bytes_atomic

# Out of room: the disk (ENOSPC), a quota (EDQUOT), a file-size limit (EFBIG).
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# MinIO answers a full drive with this code and HTTP 507; s3fs keeps it as __cause__.
_FULL_S3_CODES = {"XMinioStorageFull"}
_HTTP_INSUFFICIENT_STORAGE = 507

# botocore's defaults (60 s to connect, legacy retries) would hold a job for minutes on an
# unreachable endpoint; 3 tries with backoff ride out a restart of MinIO.
_S3_CONFIG = {"connect_timeout": 10, "read_timeout": 120,
              "retries": {"max_attempts": 3, "mode": "standard"}}


def open_objects(url, s3_endpoint_url=None):
    """The Objects for a validated TEXTGEN_ARTIFACTS_URL (see shared/settings.py)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalObjects(Path(unquote(parts.path)))
    import s3fs  # here, so that only S3 deployments pay for its import (~0.25 s)

    # No instance or listings cache: other hosts write the same keys, and a cached
    # listing would hide their writes.
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint_url, skip_instance_cache=True,
                           use_listings_cache=False, config_kwargs=_S3_CONFIG)
    root = "/".join(p for p in (parts.netloc, parts.path.strip("/")) if p)
    return Objects(fs, root, url)


class Objects:
    """Keys under `root` of an fsspec file system (S3's: bucket/prefix)."""

    def __init__(self, fs, root, url):
        self.fs = fs
        self.root = root
        self.url = url  # names the store in messages and in scratch cache keys

    def _path(self, key):
        return f"{self.root}/{key}" if key else self.root

    def write_bytes(self, key, data):
        with _translated(f"write {key} to the artifact store"):
            self.fs.pipe_file(self._path(key), data)

    def upload(self, local_path, key):
        """Store the local file `local_path` under `key`."""
        with _translated(f"write {key} to the artifact store"):
            self.fs.put_file(str(local_path), self._path(key))

    def read_bytes(self, key):
        with _translated(f"read {key} from the artifact store", missing=key):
            return self.fs.cat_file(self._path(key))

    def open(self, key):
        """A binary file object reading `key`; the caller closes it."""
        with _translated(f"read {key} from the artifact store", missing=key):
            return self.fs.open(self._path(key), "rb")

    def exists(self, key):
        with _translated(f"look up {key} in the artifact store"):
            return self.fs.exists(self._path(key))

    def list(self, prefix):
        """Names of the files directly under `prefix` ([] when there are none)."""
        with _translated(f"list {prefix} in the artifact store"):
            try:
                entries = self.fs.ls(self._path(prefix), detail=True)
            except FileNotFoundError:
                return []
        names = (entry["name"].rstrip("/").rsplit("/", 1)[-1]
                 for entry in entries if entry["type"] == "file")
        return sorted(name for name in names if not name.startswith("."))  # temporaries

    def delete(self, key):
        with _translated(f"delete {key} from the artifact store"):
            with contextlib.suppress(FileNotFoundError):  # already gone: done
                self.fs.rm_file(self._path(key))

    def delete_prefix(self, prefix):
        """Delete every key under `prefix`/."""
        with _translated(f"delete {prefix} from the artifact store"):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self._path(prefix), recursive=True)


class LocalObjects(Objects):
    """Keys as files under a local directory; writes are atomic and durable."""

    def __init__(self, root_dir):
        root_dir = Path(root_dir).resolve()
        super().__init__(LocalFileSystem(), str(root_dir), root_dir.as_uri())

    def write_bytes(self, key, data):
        with _translated(f"write {key} to the artifact store"):
            write_bytes_atomic(self._path(key), data)

    def upload(self, local_path, key):
        with _translated(f"write {key} to the artifact store"):
            copy_atomic(local_path, self._path(key))


def storage_error(e, doing):
    """The StorageError for an OSError or a botocore error raised while `doing`."""
    message = f"could not {doing}: {_reason(e)}"
    return StorageFullError(message) if _is_full(e) else StorageError(message)


@contextlib.contextmanager
def _translated(doing, *, missing=None):
    try:
        yield
    except FileNotFoundError as e:
        if missing is None:  # on a write: S3's NoSuchBucket, or a vanished directory
            raise storage_error(e, doing) from e
        raise ArtifactMissingError(f"{missing} is not in the artifact store") from e
    except (OSError, botocore.exceptions.BotoCoreError) as e:
        raise storage_error(e, doing) from e


def _is_full(e):
    if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
        return True
    response = getattr(e.__cause__, "response", None) or {}
    return (response.get("Error", {}).get("Code") in _FULL_S3_CODES or
            response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            == _HTTP_INSUFFICIENT_STORAGE)


def _reason(e):
    if isinstance(e, OSError) and e.strerror:
        return e.strerror  # "No space left on device", without our paths
    return str(e) or type(e).__name__
