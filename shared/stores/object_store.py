"""Objects: bytes under '/'-separated keys in one place, a local directory or an S3 prefix.

The one module that knows the two backends; shared/stores/artifacts.py builds the keys. Both go
through fsspec (s3fs for S3). A write is whole or absent: an S3 PUT, and a multipart
upload (s3fs aborts it on failure), only appears complete; on a local disk the write goes
through shared/local_files (temp, fsync, rename). Failures are translated here, at the
boundary: a missing key is ArtifactMissingError, anything else the store or the network
refuses is StorageError (StorageFullError when it is out of room).

Large objects (a model of hundreds of MB) are never read whole to be served: StoredFile
gives a local path (sendfile), a presigned URL (S3), or bounded chunks.
"""

import contextlib
import errno
from pathlib import Path
from urllib.parse import unquote, urlsplit

import botocore.exceptions
from fsspec.implementations.local import LocalFileSystem

from shared.contracts.errors import ArtifactMissingError, StorageError, StorageFullError
from shared.runtime.local_files import copy_atomic, write_bytes_atomic

# Out of room: the disk (ENOSPC), a quota (EDQUOT), a file-size limit (EFBIG).
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# MinIO answers a full drive with this code and HTTP 507; s3fs keeps it as __cause__.
_FULL_S3_CODES = {"XMinioStorageFull"}
_HTTP_INSUFFICIENT_STORAGE = 507

# botocore's defaults (60 s to connect, legacy retries) would hold a job for minutes on an
# unreachable endpoint; 3 tries with backoff ride out a restart of MinIO.
# SigV4 for presigned URLs too (botocore presigns with the legacy V2 in us-east-1 unless
# told): what AWS requires in newer regions, and MinIO accepts.
_S3_CONFIG = {"connect_timeout": 10, "read_timeout": 120,
              "retries": {"max_attempts": 3, "mode": "standard"},
              "signature_version": "s3v4"}
# A chunk of an object streamed through a process (a zip of a model from S3): one ranged
# GET each; 1 MiB keeps four concurrent 500 MB downloads within a few MB of memory, and
# is large enough that the requests' overhead does not matter.
CHUNK_BYTES = 1024 * 1024


def open_objects(url, s3_endpoint_url=None, s3_public_url=None):
    """The Objects for a validated TEXTGEN_ARTIFACTS_URL (see shared/runtime/settings.py).

    `s3_public_url`: the S3 endpoint as clients reach it, for presigned URLs, when it is
    not the one this process uses (MinIO is http://minio:9000 inside Compose).
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalObjects(Path(unquote(parts.path)))
    import s3fs  # here, so that only S3 deployments pay for its import (~0.25 s)

    def s3(endpoint_url):
        # No instance or listings cache: other hosts write the same keys, and a cached
        # listing would hide their writes.
        return s3fs.S3FileSystem(endpoint_url=endpoint_url, skip_instance_cache=True,
                                 use_listings_cache=False, config_kwargs=_S3_CONFIG)

    fs = s3(s3_endpoint_url)
    # Signing is local computation: the public endpoint is only ever written into URLs.
    signer = s3(s3_public_url) if s3_public_url and s3_public_url != s3_endpoint_url else fs
    root = "/".join(p for p in (parts.netloc, parts.path.strip("/")) if p)
    return Objects(fs, root, url, signer)


class Objects:
    """Keys under `root` of an fsspec file system (S3's: bucket/prefix)."""

    def __init__(self, fs, root, url, signer=None):
        self.fs = fs
        self.root = root
        self.url = url  # names the store in messages and in scratch cache keys
        self.signer = signer or fs  # the file system that presigns URLs for clients

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

    def stored(self, key):
        """The StoredFile of `key`; ArtifactMissingError when it is absent."""
        with _translated(f"read {key} from the artifact store", missing=key):
            return StoredFile(self, key, self.fs.size(self._path(key)))

    def local_path(self, key):
        """The file holding `key` on this host, or None when the store is remote."""
        return None

    def presigned_url(self, key, expires_s, response_headers):
        """A URL that lets anyone GET `key` for `expires_s` seconds, the response carrying
        `response_headers` (S3's Response* parameters: ResponseContentDisposition, ...);
        None when the store is local."""
        with _translated(f"sign a URL for {key}"):
            return self.signer.url(self._path(key), expires=int(expires_s),
                                   **response_headers)

    def chunks(self, key, chunk_bytes=CHUNK_BYTES):
        """The bytes of `key`, in chunks of at most `chunk_bytes`, read as they are asked
        for (no read-ahead: memory stays one chunk whatever the object's size)."""
        with _translated(f"read {key} from the artifact store", missing=key):
            file = self.fs.open(self._path(key), "rb", block_size=chunk_bytes,
                                cache_type="none")
        with file:
            while True:
                with _translated(f"read {key} from the artifact store", missing=key):
                    chunk = file.read(chunk_bytes)
                if not chunk:
                    return
                yield chunk

    def exists(self, key):
        with _translated(f"look up {key} in the artifact store"):
            return self.fs.exists(self._path(key))

    def list(self, prefix):
        """Names of the files directly under `prefix` ([] when there are none)."""
        return sorted(self.sizes(prefix))

    def sizes(self, prefix):
        """{name: bytes} of the files directly under `prefix`."""
        with _translated(f"list {prefix} in the artifact store"):
            try:
                entries = self.fs.ls(self._path(prefix), detail=True)
            except FileNotFoundError:
                return {}
        named = ((entry["name"].rstrip("/").rsplit("/", 1)[-1], entry["size"])
                 for entry in entries if entry["type"] == "file")
        return {name: size for name, size in named if not name.startswith(".")}  # temporaries

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

    def local_path(self, key):
        return Path(self._path(key))

    def presigned_url(self, key, expires_s, response_headers):
        return None


class StoredFile:
    """One stored object, found (its size known), to be served without being read whole:
    from `local_path()` by sendfile, through `presigned_url()` by the store itself, or in
    `chunks()` through the caller."""

    def __init__(self, objects, key, size):
        self.objects = objects
        self.key = key
        self.size = size  # bytes

    def local_path(self):
        return self.objects.local_path(self.key)

    def presigned_url(self, expires_s, **response_headers):
        return self.objects.presigned_url(self.key, expires_s, response_headers)

    def chunks(self, chunk_bytes=CHUNK_BYTES):
        return self.objects.chunks(self.key, chunk_bytes)


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
