"""A full disk or an unwritable store: uploads answer 507 (or storage_failed), training jobs
fail with storage_failed and register no model, and no reader ever finds a partial file.

The disks are real: a 1 MB tmpfs and read-only bind mounts, so these tests need root and a
kernel that lets us mount (they skip, saying why, where it does not)."""

import dataclasses
import io
import os
import shutil
import subprocess

import pytest

from shared.stores.jobs import JobStatus
from shared.runtime.services import Services
from tests.api_helpers import assert_problem
from tests.conftest import client_of
from tests.test_end_to_end import TEXT, TINY_DEFAULT
from worker.runs import run_training
from worker.tasks import run_job

pytestmark = pytest.mark.subprocess  # mount(8)


def mount(*argv):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs or a read-only bind needs root and mount(8)")
    result = subprocess.run(["mount", *argv], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"mount is not permitted here: {result.stderr.strip()}")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs: a disk that fills up."""
    path = tmp_path / "tiny"
    path.mkdir()
    mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path))
    yield path
    subprocess.run(["umount", "--lazy", str(path)], check=True)


@pytest.fixture
def make_read_only(tmp_path):
    """make_read_only(directory): a read-only bind mount of `directory` over itself."""
    mounted = []

    def make(directory):
        directory.mkdir(parents=True, exist_ok=True)
        mount("--bind", str(directory), str(directory))
        mounted.append(directory)
        mount("-o", "remount,bind,ro", str(directory))
    yield make
    for directory in reversed(mounted):
        subprocess.run(["umount", "--lazy", str(directory)], check=True)


def fill(disk, leave_bytes=0):
    """Take all the free space of `disk` but `leave_bytes`."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    with open(disk / "filler", "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave_bytes))
        except OSError:
            pass  # full already: what we want


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def upload(client, text):
    return client.post("/v1/corpora", data={"file": (io.BytesIO(text.encode()), "book.txt")},
                       content_type="multipart/form-data")


def test_an_upload_to_a_full_disk_answers_507_and_stores_nothing(settings, tiny_disk):
    from api import create_app

    settings = dataclasses.replace(settings, artifacts_url=tiny_disk.as_uri())
    client = client_of(create_app(settings))
    fill(tiny_disk, leave_bytes=16 * 1024)
    assert_problem(upload(client, "x" * 60_000), 507, "insufficient_storage")
    assert files_under(tiny_disk) == ["filler"]  # no corpus, no temporary
    svc = Services.from_settings(settings)
    assert list(svc.redis.scan_iter(match=svc.keys.corpus("*"))) == []
    assert svc.storage.usage("alice") == (0, 0)  # the charge given back

    (tiny_disk / "filler").unlink()  # with room, the same upload is stored
    assert upload(client, "x" * 60_000).status_code == 201


def test_an_upload_to_a_read_only_store_fails_readably(settings, tmp_path, make_read_only):
    from api import create_app

    make_read_only(tmp_path / "store")
    client = client_of(create_app(dataclasses.replace(
        settings, artifacts_url=(tmp_path / "store").as_uri())))
    body = assert_problem(upload(client, TEXT), 503, "storage_failed")
    assert "Read-only file system" in body["detail"]
    assert files_under(tmp_path / "store") == []


def submit_training(settings):
    """A tiny training job on TEXT, submitted through the API; its id."""
    from api import create_app

    client = client_of(create_app(settings))
    response = upload(client, TEXT)
    assert response.status_code == 201
    response = client.post("/v1/train", json={"corpus_id": response.get_json()["id"],
                                              "preset": "default", **TINY_DEFAULT})
    assert response.status_code == 202
    return response.get_json()["id"]


def assert_failed_without_a_model(svc, job_id):
    job = svc.jobs.get(job_id)
    assert job["status"] == JobStatus.FAILED
    assert job["error"]["code"] == "storage_failed" and job["error"]["message"]
    assert list(svc.redis.scan_iter(match=svc.keys.model("*"))) == []
    return job


@pytest.mark.keras  # trains, until the disk is full
@pytest.mark.parametrize("full", ["store", "scratch"])
def test_a_training_job_on_a_full_disk_fails_with_storage_failed(settings, tmp_path,
                                                                 tiny_disk, full):
    if full == "store":
        settings = dataclasses.replace(settings, artifacts_url=tiny_disk.as_uri(),
                                       cache_dir=tmp_path / "cache")
    else:
        settings = dataclasses.replace(settings, cache_dir=tiny_disk / "cache")
    job_id = submit_training(settings)
    fill(tiny_disk)
    svc = Services.from_settings(settings)
    run_job(svc, job_id, run_training, "test-worker")

    job = assert_failed_without_a_model(svc, job_id)
    assert "No space left on device" in job["error"]["message"]
    store = tiny_disk if full == "store" else settings.data_dir
    # No model, no checkpoint committed, no temporary left behind.
    assert [f for f in files_under(store) if not f.startswith("corpora/")] in ([], ["filler"])


@pytest.mark.keras  # trains a model it then cannot publish
def test_a_model_that_cannot_be_published_is_not_registered(settings, make_read_only):
    make_read_only(settings.data_dir / "models")
    job_id = submit_training(settings)
    svc = Services.from_settings(settings)
    run_job(svc, job_id, run_training, "test-worker")

    job = assert_failed_without_a_model(svc, job_id)
    assert "Read-only file system" in job["error"]["message"]
    assert files_under(settings.data_dir / "models") == []
    # The checkpoints were written: a retry could resume from them.
    state = svc.artifacts.checkpoints(job_id, 1).read_state()
    assert state["epoch"] == 2
