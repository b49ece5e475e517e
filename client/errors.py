"""The client's errors: one tree, each raised for one kind of thing that went wrong."""


class ClientError(Exception):
    """Raised for anything the client could not do; the base of the errors below."""


class ApiError(ClientError):
    """Raised when the API answers with a problem (4xx/5xx): application/problem+json with a
    stable `code`, a `title`, a `detail`, the `field` at fault and, for a 422, `errors`."""

    def __init__(self, status, problem, retry_after_s=None):
        self.status = status
        self.problem = problem
        self.code = problem.get("code", "error")
        self.title = problem.get("title") or f"HTTP {status}"
        self.detail = problem.get("detail", "")
        self.field = problem.get("field")
        self.errors = problem.get("errors") or []
        self.retry_after_s = retry_after_s  # from Retry-After, on a 429 or 503
        super().__init__(self.line())

    def line(self):
        """One readable line: title, detail, and the field unless the detail names it."""
        text = f"{self.title}: {self.detail}" if self.detail else self.title
        if self.field and self.field not in self.detail:
            text += f" (field {self.field})"
        return text


class ConnectionFailedError(ClientError):
    """Raised when the API cannot be reached (refused, reset, timed out)."""


class WaitTimeoutError(ClientError, TimeoutError):
    """Raised by Client.wait when the job has not ended in time; carries the job as last
    seen."""

    def __init__(self, job, timeout_s):
        self.job = job
        super().__init__(f"job {job['id']} is still {job['status']} after {timeout_s:g} s")
