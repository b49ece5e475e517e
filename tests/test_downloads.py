"""Model downloads stream from the store: the API under gunicorn (as `make up` runs it)
serves four large downloads at once while its processes' resident memory barely moves.

The model file is synthetic and sparse (a 500 MB hole costs no disk and reads as zeros),
so the tests measure the serving path, not training. Local store: files go out by
sendfile and zips are built while sent. S3 store (moto on loopback): a file is a redirect
to a presigned URL, so the API never holds its bytes; a zip streams through the API in
1 MiB ranged reads (moto reads a whole object for every ranged GET, so the S3 model is
smaller: still four times over the limit if a download held it whole).
"""

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests

from client.api_client import Client
from shared.stores.artifacts import MODEL_FILES
from shared.contracts.specs import GenerateSpec
from shared.stores.owner_slots import OwnerSlots
from shared.stores.results import encode_samples, result_summary
from tests.api_helpers import registered_model
from tests.conftest import TEST_REDIS_URL, TOKENS, bearer
from tests.faults import wait_for

MB = 1024 * 1024
MAX_GROWTH_BYTES = 50 * MB  # the bound on the API's RSS growth
DOWNLOADS = 4  # at once
MODEL_BYTES = {"file": 500 * MB, "s3": 48 * MB}
SAMPLE_EVERY_S = 0.02
_START_TIMEOUT_S = 30.0


def rss_bytes(pid):
    """Resident memory of `pid` and all its descendants (gunicorn's master and workers)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines()
                      if line.startswith("VmRSS:"))
        pids += [int(child) for child in children]
    return total


@pytest.fixture
def api_server(store_settings, tmp_path, request):
    """The API under gunicorn on store_settings' Redis prefix and artifact store, with
    the variables of an indirect parameter, if any."""
    from shared.stack.runner import api_command, free_port

    port = free_port()
    env = {**os.environ, "REDIS_URL": TEST_REDIS_URL,
           "TEXTGEN_REDIS_PREFIX": store_settings.redis_prefix,
           "TEXTGEN_DATA_DIR": str(store_settings.data_dir),
           "TEXTGEN_API_TOKENS": ",".join(f"{n}:{t}" for n, t in TOKENS.items()),
           "TEXTGEN_MAX_DOWNLOADS_PER_OWNER": str(DOWNLOADS),
           **getattr(request, "param", {})}
    if store_settings.artifacts_url:
        env.update(TEXTGEN_ARTIFACTS_URL=store_settings.artifacts_url,
                   AWS_ENDPOINT_URL=store_settings.s3_endpoint_url)
    log = open(tmp_path / "api.log", "wb")
    process = subprocess.Popen(api_command(sys.executable, port), env=env, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=Path(__file__).resolve().parents[1])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + _START_TIMEOUT_S
    try:
        while True:
            try:
                requests.get(url + "/v1/openapi.json", timeout=10)
                break
            except requests.RequestException:  # not listening yet, or slow on a busy machine
                assert process.poll() is None and time.monotonic() < deadline, \
                    f"gunicorn did not start: {(tmp_path / 'api.log').read_text()}"
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def services(store_settings):
    """The stores on `backend`, as the API server sees them."""
    from shared.runtime.services import Services

    return Services.from_settings(store_settings)


def large_model(services, backend, size, owner="alice"):
    """A registered model whose model.keras is `size` bytes of zeros."""
    model = registered_model(services, owner=owner)
    key = f"models/{model['id']}/a1/model.keras"
    if backend == "file":
        os.truncate(services.artifacts.objects.local_path(key), size)  # sparse: no disk
    else:
        services.artifacts.objects.write_bytes(key, bytes(size))
    return model


def download(url, expected_bytes, failures):
    """GET `url` (following a redirect, as clients do), reading and dropping the body."""
    try:
        with requests.get(url, headers=bearer("alice"), stream=True, timeout=120) as response:
            response.raise_for_status()
            received = sum(len(chunk) for chunk in response.iter_content(MB))
        if received != expected_bytes:
            failures.append(f"{url}: {received} bytes, expected {expected_bytes}")
    except Exception as e:  # noqa: BLE001 - reported by the test thread, which asserts
        failures.append(f"{url}: {e!r}")


def peak_growth_during(pid, threads):
    """Start `threads`, sample the RSS until they end; the peak over the RSS before."""
    baseline = rss_bytes(pid)
    peak = baseline
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_bytes(pid))
        time.sleep(SAMPLE_EVERY_S)
    for thread in threads:
        thread.join()
    return peak - baseline


def zip_bytes(services, model):
    """The length of the model's zip: its Content-Length, checked against the files."""
    return sum(services.artifacts.model_file(model["id"], 1, name).size
               for name in MODEL_FILES)


@pytest.mark.stack  # the API under gunicorn
def test_four_large_downloads_at_once_leave_the_api_memory_flat(api_server, services,
                                                                 backend, tmp_path):
    url, pid = api_server
    size = MODEL_BYTES[backend]
    model = large_model(services, backend, size)
    file_url = f"{url}/v1/models/{model['id']}/files/model.keras"
    zip_url = f"{url}/v1/models/{model['id']}/download"

    # Warm every gunicorn worker up on both paths, with a small model, so that the
    # baseline holds the code and buffers a first request allocates.
    small = registered_model(services)
    for _ in range(8):
        for path in ("files/model.keras", "download"):
            response = requests.get(f"{url}/v1/models/{small['id']}/{path}",
                                    headers=bearer("alice"), timeout=30)
            assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:  # a streamed zip is whole
        assert archive.testzip() is None and sorted(archive.namelist()) == sorted(MODEL_FILES)
        assert int(response.headers["Content-Length"]) == len(response.content)
    # The Python client follows S3's redirect too (without our token), and saves the zip.
    api = Client(url, token=TOKENS["alice"])
    assert json.loads(api.model_file(small["id"], "vocab.json")) == {"file": "vocab.json"}
    saved = api.download(small["id"], tmp_path / "small")
    assert sorted(path.name for path in saved) == sorted(MODEL_FILES)

    # The zip: its length is known before it is built, and it holds the whole file.
    head = requests.get(zip_url, headers=bearer("alice"), stream=True, timeout=30)
    zip_length = int(head.headers["Content-Length"])
    head.close()
    assert zip_length > zip_bytes(services, model)

    if backend == "s3":  # the store serves the file itself: the API only signs a URL
        redirect = requests.get(file_url, headers=bearer("alice"), allow_redirects=False,
                                timeout=30)
        assert redirect.status_code == 302
        assert "X-Amz-Signature=" in redirect.headers["Location"]

    failures = []
    threads = [threading.Thread(target=download, args=(file_url, size, failures))
               for _ in range(DOWNLOADS // 2)]
    threads += [threading.Thread(target=download, args=(zip_url, zip_length, failures))
                for _ in range(DOWNLOADS - len(threads))]
    started = time.monotonic()
    growth = peak_growth_during(pid, threads)
    elapsed_s = time.monotonic() - started
    assert not failures, failures
    print(f"{backend}: {DOWNLOADS} downloads of a {size // MB} MB model in {elapsed_s:.1f} s;"
          f" API RSS grew {growth / MB:.1f} MB")
    assert growth < MAX_GROWTH_BYTES, f"the API's RSS grew {growth / MB:.0f} MB"



@pytest.mark.stack  # the API under gunicorn: files by sendfile, released by its close()
@pytest.mark.parametrize("backend", ["file"])
def test_an_owners_downloads_past_the_cap_are_refused_until_one_ends(api_server, services):
    url, _ = api_server
    model = large_model(services, "file", MODEL_BYTES["file"])
    paths = [f"{url}/v1/models/{model['id']}/files/model.keras",
             f"{url}/v1/models/{model['id']}/download"]
    slots = OwnerSlots(services.redis, services.keys.download_slots)

    def start(path, owner="alice"):
        return requests.get(path, headers=bearer(owner), stream=True, timeout=30)

    held = [start(paths[n % 2]) for n in range(DOWNLOADS)]  # the cap: files and zips alike
    assert [response.status_code for response in held] == [200] * DOWNLOADS
    for path in paths:
        refused = start(path)
        assert refused.status_code == 429 and refused.headers["Retry-After"].isdigit()
        problem = refused.json()
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert problem["code"] == "too_many_downloads"
        assert "TEXTGEN_MAX_DOWNLOADS_PER_OWNER" in problem["detail"]
    # Another owner's downloads are counted apart.
    bobs = large_model(services, "file", MB, owner="bob")
    with start(f"{url}/v1/models/{bobs['id']}/download", "bob") as response:
        assert response.status_code == 200 and len(response.content) > MB

    # One client hangs up a megabyte into its file, one reads its zip to the end: both
    # slots are free again, and two more downloads start.
    next(held[0].iter_content(MB))
    held[0].close()
    assert sum(len(chunk) for chunk in held[1].iter_content(MB)) > MODEL_BYTES["file"]
    held[1].close()
    wait_for(lambda: slots.held("alice") == DOWNLOADS - 2, 20, "two slots released")
    held[:2] = [start(path) for path in paths]
    assert [response.status_code for response in held] == [200] * DOWNLOADS
    assert start(paths[0]).status_code == 429
    for response in held:
        response.close()
    wait_for(lambda: slots.held("alice") == 0, 20, "every slot released")
    # A HEAD request sends no body: it holds no slot after its answer.
    for _ in range(DOWNLOADS + 1):
        assert requests.head(paths[0], headers=bearer("alice"), timeout=30).status_code == 200
    assert slots.held("alice") == 0


@pytest.mark.stack  # the API under gunicorn: the pace is its connection's
@pytest.mark.parametrize("backend", ["file"])
@pytest.mark.parametrize("api_server", [{"TEXTGEN_DOWNLOAD_MB_S": "2"}], indirect=True)
def test_a_download_is_paced_and_the_connections_next_answer_is_not(api_server, services):
    url, _ = api_server
    model = large_model(services, "file", 12 * MB)
    # A generation's samples (12 MB): an answer that is not a download, never paced.
    samples = [{"text": "x" * MB, "temperature": 1.0}] * 12
    job = services.jobs.create("generate", GenerateSpec(model_id=model["id"]).model_dump(),
                               "alice", max_queued=10, model_id=model["id"])
    attempt = services.jobs.start(job["id"], "w", 30_000)
    data = encode_samples(samples, 64 * MB)
    services.artifacts.put_result(job["id"], attempt, data)
    assert services.jobs.succeed(job["id"], attempt,
                                 result_summary(job["id"], attempt, samples, len(data)))
    session = requests.Session()
    session.headers.update(bearer("alice"))
    for path in ("files/model.keras", "download"):  # by sendfile, and through Python
        began = time.monotonic()
        response = session.get(f"{url}/v1/models/{model['id']}/{path}", timeout=60)
        assert response.status_code == 200 and len(response.content) >= 12 * MB
        # 12 MB at 2 MB/s: 6 s, less the socket's buffer (up to 4 MB here, tcp_wmem), which
        # the kernel still holds when the body is done and the pace lifted.
        assert time.monotonic() - began > 3
        # The same connection, kept alive, answers the next request at full speed.
        began = time.monotonic()
        assert session.get(f"{url}/v1/jobs/{job['id']}/result", timeout=60).json() \
            ["samples"] == samples
        assert time.monotonic() - began < 2  # paced: 4 s at least
