"""The artifact store on both backends (a local directory; S3 through moto's server): what a
write publishes, what a reader finds, and how failures read."""

import dataclasses
import io
import zipfile

import pytest
import requests

from shared.stores.artifacts import MODEL_FILES, open_artifact_store
from shared.contracts.errors import ArtifactMissingError, StorageError, StorageFullError
from shared.stores.object_store import storage_error


def stored_keys(store):
    """Every key in the store, temporaries included (local: dot files)."""
    objects = store.objects
    root = objects.root.rstrip("/")
    return sorted(path[len(root) + 1:] for path in objects.fs.find(root, withdirs=False))


def model_dir(tmp_path, marker):
    local = tmp_path / f"model-{marker}"
    local.mkdir()
    for name in MODEL_FILES:
        (local / name).write_bytes(f"{marker}:{name}".encode())
    return local


def test_corpus_is_stored_once_per_hash_and_read_back(store):
    sha = "ab" * 32
    store.put_corpus(sha, "héllo\nworld\n")
    store.put_corpus(sha, "héllo\nworld\n")
    assert store.read_corpus(sha) == "héllo\nworld\n"
    assert stored_keys(store) == [f"corpora/{sha}/text.txt"]
    store.delete_corpus(sha)
    with pytest.raises(ArtifactMissingError):
        store.read_corpus(sha)
    assert stored_keys(store) == []


def test_model_attempts_never_share_files(store, tmp_path):
    store.publish_model("mdl_1", 1, model_dir(tmp_path, "first"))
    store.publish_model("mdl_1", 2, model_dir(tmp_path, "second"))
    assert stored_keys(store) == sorted(
        f"models/mdl_1/a{attempt}/{name}" for attempt in (1, 2) for name in MODEL_FILES)
    assert b"".join(store.model_file("mdl_1", 1, "vocab.json").chunks()) == b"first:vocab.json"
    local = store.local_model_dir("mdl_1", 2)
    assert sorted(p.name for p in local.iterdir()) == sorted(MODEL_FILES)
    assert (local / "model.keras").read_bytes() == b"second:model.keras"
    assert local.is_relative_to(tmp_path / "cache")

    store.delete_model("mdl_1")
    assert stored_keys(store) == []
    with pytest.raises(ArtifactMissingError):
        store.model_file("mdl_1", 1, "vocab.json")


def test_another_host_reads_what_one_published(store_settings, tmp_path):
    writer = open_artifact_store(store_settings)
    reader = open_artifact_store(dataclasses.replace(store_settings,
                                                     cache_dir=tmp_path / "other-cache"))
    writer.publish_model("mdl_2", 1, model_dir(tmp_path, "x"))
    assert (reader.local_model_dir("mdl_2", 1) / "config.json").read_bytes() == b"x:config.json"
    assert reader.local_model_dir("mdl_2", 1).is_relative_to(tmp_path / "other-cache")


def test_a_missing_model_file_is_artifact_missing(store, tmp_path):
    with pytest.raises(ArtifactMissingError):
        store.local_model_dir("mdl_none", 1)
    assert not (tmp_path / "cache" / "entries").exists() or \
        not any((tmp_path / "cache" / "entries").iterdir())


@pytest.mark.parametrize("bad", ["../etc", "a/b", "ABC", "", "x" * 81])
def test_names_that_could_be_paths_are_refused(store, tmp_path, bad):
    with pytest.raises(ValueError):
        store.put_corpus(bad, "text")
    with pytest.raises(ValueError):
        store.publish_model(bad, 1, model_dir(tmp_path, "m"))
    with pytest.raises(ValueError):
        store.checkpoints(bad, 1)
    assert stored_keys(store) == []


def test_checkpoint_state_is_none_until_committed(store, tmp_path):
    checkpoints = store.checkpoints("job_1", 2)
    assert checkpoints.read_state() is None and checkpoints.names() == []
    checkpoints.save_file("epoch-0001-a2.keras", lambda path: path.write_bytes(b"w1"))
    assert checkpoints.read_state() is None  # a file without a commit is not a checkpoint
    checkpoints.write_state({"epoch": 1, "last_file": "epoch-0001-a2.keras"})
    assert checkpoints.read_state() == {"epoch": 1, "last_file": "epoch-0001-a2.keras"}
    with checkpoints.fetched("epoch-0001-a2.keras") as path:
        assert path.read_bytes() == b"w1"
    assert not path.exists()  # fetched copies are scratch, not cache
    assert checkpoints.names() == ["epoch-0001-a2.keras"]
    store.delete_job_files("job_1")
    assert stored_keys(store) == []


def test_writing_to_a_missing_bucket_or_directory_is_a_storage_error(store_settings, backend,
                                                                     tmp_path):
    if backend == "s3":
        url = store_settings.artifacts_url.replace("s3://textgen-test/", "s3://no-such-bucket/")
    else:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        url = (blocker / "store").as_uri()
    store = open_artifact_store(dataclasses.replace(store_settings, artifacts_url=url))
    with pytest.raises(StorageError, match="could not write"):
        store.publish_model("mdl_1", 1, model_dir(tmp_path, "m"))


def test_an_unreachable_s3_endpoint_is_a_storage_error(settings, s3_server, tmp_path):
    from shared.stack.runner import free_port

    store = open_artifact_store(dataclasses.replace(
        settings, artifacts_url="s3://textgen-test/x", cache_dir=tmp_path / "cache",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(StorageError, match="Could not connect"):
        store.put_corpus("ab" * 32, "text")


def test_an_s3_server_out_of_room_is_storage_full():
    # MinIO's answer to a write on a full drive, as s3fs raises it (moto never runs out).
    import botocore.exceptions
    from s3fs.errors import translate_boto_error

    refused = botocore.exceptions.ClientError(
        {"Error": {"Code": "XMinioStorageFull", "Message": "Storage backend has reached its "
                   "minimum free drive threshold."},
         "ResponseMetadata": {"HTTPStatusCode": 507}}, "PutObject")
    assert isinstance(storage_error(translate_boto_error(refused), "write x"), StorageFullError)
    assert not isinstance(storage_error(OSError(5, "I/O error"), "write x"), StorageFullError)


def test_the_api_serves_model_files_of_the_attempt_the_record_names(store_settings, backend,
                                                                   tmp_path):
    from api import create_app
    from shared.runtime.clock import new_id
    from shared.runtime.services import Services
    from tests.conftest import client_of

    svc = Services.from_settings(store_settings)
    model_id = new_id("mdl")  # the API finds only ids it could have made
    svc.artifacts.publish_model(model_id, 1, model_dir(tmp_path, "stale"))
    svc.artifacts.publish_model(model_id, 2, model_dir(tmp_path, "fresh"))
    svc.models.put({"id": model_id, "owner": "alice", "attempt": 2, "config": {},
                    "vocab_size": 3, "metrics": {}})
    client = client_of(create_app(store_settings))
    response = client.get(f"/v1/models/{model_id}/files/model.keras")
    if response.status_code == 302:  # S3: the store serves it, through a presigned URL
        response = requests.get(response.headers["Location"], timeout=10)
        assert response.status_code == 200 and backend == "s3"
        data = response.content
    else:
        assert response.status_code == 200 and backend == "file"
        data = response.data
        response.close()
    assert data == b"fresh:model.keras"
    assert response.headers["Content-Disposition"] == \
        f"attachment; filename={model_id}-model.keras"
    assert response.headers["Content-Type"] == "application/zip"

    response = client.get(f"/v1/models/{model_id}/download")
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert {name: archive.read(name) for name in archive.namelist()} == {
        name: f"fresh:{name}".encode() for name in MODEL_FILES}


def test_discarding_an_attempt_leaves_the_others(store, tmp_path):
    store.publish_model("mdl_4", 1, model_dir(tmp_path, "one"))
    store.publish_model("mdl_4", 2, model_dir(tmp_path, "two"))
    store.discard_model_attempt("mdl_4", 1)
    assert b"".join(store.model_file("mdl_4", 2, "vocab.json").chunks()) == b"two:vocab.json"
    with pytest.raises(ArtifactMissingError):
        store.model_file("mdl_4", 1, "vocab.json")
