"""A small client for the textgen HTTP API. Imports nothing of the server."""

import time

import requests

TERMINAL = ("succeeded", "failed", "cancelled")  # a job in one of these has ended


class ApiError(Exception):
    """Raised when the API answers with a problem (4xx/5xx); carries its code and detail."""

    def __init__(self, status, problem):
        self.status = status
        self.problem = problem
        self.code = problem.get("code", "error")
        field = f" (field {problem['field']})" if problem.get("field") else ""
        super().__init__(f"{status} {self.code}: {problem.get('detail', '')}{field}")


class Client:
    def __init__(self, base_url, token=None, timeout_s=30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method, path, **kwargs):
        response = self.http.request(method, self.base_url + path, timeout=self.timeout_s,
                                     **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:200]}
            raise ApiError(response.status_code, problem)
        return response.json() if response.content else None

    def health(self):
        return self._call("GET", "/v1/health")

    def upload_corpus(self, path, name=None):
        with open(path, "rb") as f:
            return self._call("POST", "/v1/corpora", files={"file": (path.name, f)},
                              data={"name": name or path.name})

    def gutenberg_corpus(self, ebook, name=None):
        body = {"gutenberg_id": ebook, **({"name": name} if name else {})}
        return self._call("POST", "/v1/corpora", json=body)

    def train(self, corpus_id, preset="default", **sections):
        return self._call("POST", "/v1/train",
                          json={"corpus_id": corpus_id, "preset": preset, **sections})

    def generate(self, model_id, **options):
        return self._call("POST", "/v1/generate", json={"model_id": model_id, **options})

    def job(self, job_id):
        return self._call("GET", f"/v1/jobs/{job_id}")

    def model(self, model_id):
        return self._call("GET", f"/v1/models/{model_id}")

    def events(self, job_id, after="0"):
        """(events, cursor) after `after`; pass the cursor back for what came since."""
        page = self._call("GET", f"/v1/jobs/{job_id}/events", params={"after": after})
        return page["data"], page["next"]

    def cancel(self, job_id):
        return self._call("POST", f"/v1/jobs/{job_id}/cancel")

    def wait(self, job_id, on_update=None, poll_s=1.0, timeout_s=None):
        """Poll until the job is terminal; call `on_update(job)` on every poll."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if on_update:
                on_update(job)
            if job["status"] in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s}s")
            time.sleep(poll_s)
