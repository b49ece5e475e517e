"""Logging, configured once by each entry point: text lines, or one JSON object a line
(TEXTGEN_LOG_FORMAT=json) that a fleet's log store can search by job, owner and attempt.

The job a line belongs to comes from a context variable that the worker sets while it
runs a job (job_context), so no call site has to pass it; a thread started for the job
(the lease's heartbeat) runs in a copy of that context.
"""

import contextlib
import contextvars
import json
import logging

_JOB = contextvars.ContextVar("textgen_job", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


@contextlib.contextmanager
def job_context(job_id, owner, attempt):
    """Lines logged inside carry the job's id, owner and attempt."""
    token = _JOB.set({"job_id": job_id, "owner": owner, "attempt": attempt})
    try:
        yield
    finally:
        _JOB.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
                "level": record.levelname, "logger": record.name,
                "process": record.process, "message": record.getMessage(),
                **(_JOB.get() or {})}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(settings):
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
