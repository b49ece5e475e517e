"""A real S3-protocol server on loopback for the tests: moto's standalone server in a child
process, spoken to over HTTP by the same s3fs code as production (only S3 itself, which is
outside the machine, is a stand-in)."""

import os
import subprocess
import sys
import time

import requests

# moto accepts any credentials, but botocore signs every request and needs some.
FAKE_AWS_ENV = {"AWS_ACCESS_KEY_ID": "textgen-test", "AWS_SECRET_ACCESS_KEY": "textgen-test",
                "AWS_DEFAULT_REGION": "us-east-1"}
_START_TIMEOUT_S = 30.0  # moto starts in about half a second; a loaded machine is slower


class MotoServer:
    def __init__(self, port, log_path):
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                requests.get(self.endpoint_url + "/moto-api/", timeout=2)
                return
            except requests.ConnectionError as e:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start; see {log_path}") from e
                time.sleep(0.1)

    def create_bucket(self, bucket):
        import s3fs

        s3fs.S3FileSystem(endpoint_url=self.endpoint_url, skip_instance_cache=True).mkdir(bucket)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def fake_aws_environment():
    """Set FAKE_AWS_ENV in os.environ; return the values it replaced, for restore_environment."""
    saved = {name: os.environ.get(name) for name in FAKE_AWS_ENV}
    os.environ.update(FAKE_AWS_ENV)
    return saved


def restore_environment(saved):
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
