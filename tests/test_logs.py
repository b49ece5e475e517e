"""shared.runtime.logs: JSON lines that name the job, owner and attempt of the work they log."""

import json
import logging
import threading

from shared.runtime.logs import JsonFormatter, job_context


def test_a_json_line_carries_the_job_it_was_logged_for():
    lines = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(JsonFormatter().format(record)))

    logger = logging.getLogger("test.logs")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    try:
        logger.info("before")
        with job_context("job_1", "alice", 2):
            logger.info("epoch %d done", 3)
            import contextvars

            thread = threading.Thread(target=contextvars.copy_context().run,
                                      args=(logger.info, "from a heartbeat"))
            thread.start()
            thread.join()
        logger.info("after")
    finally:
        logger.handlers.clear()
    assert [line["message"] for line in lines] == ["before", "epoch 3 done",
                                                   "from a heartbeat", "after"]
    assert "job_id" not in lines[0] and "job_id" not in lines[3]
    for line in lines[1:3]:
        assert (line["job_id"], line["owner"], line["attempt"]) == ("job_1", "alice", 2)
        assert line["level"] == "INFO" and line["logger"] == "test.logs" and line["time"]
