"""A generation job's result: its samples as one stored JSON artifact, and the short
summary the job record keeps (a preview and where to fetch the rest).

The samples of one job can reach megabytes (64 samples of 100,000 tokens); a job record
is read by every poll and listing, so it holds only the summary. GET
/v1/jobs/<id>/result serves the artifact, streamed from the store.
"""

import json

from shared.contracts.errors import GenerationTooLargeError, JobFailedError

# The record's preview: the first samples, cut. Small enough that a page of 200 jobs
# stays well under 1 MB even when every character is escaped in JSON (6 bytes).
PREVIEW_SAMPLES = 3
PREVIEW_CHARS = 100


class ResultTooLargeError(JobFailedError):
    """Raised when a generation job's samples are over TEXTGEN_MAX_RESULT_MB."""

    code = "result_too_large"
    title = "Result too large"


def result_path(job_id):
    return f"/v1/jobs/{job_id}/result"


def encode_samples(samples, max_bytes):
    """The artifact's bytes: {"samples": [...]}, or ResultTooLargeError over `max_bytes`."""
    data = json.dumps({"samples": samples}, ensure_ascii=False).encode("utf-8")
    if len(data) > max_bytes:
        raise ResultTooLargeError(
            f"the samples take {len(data):,} bytes, over the limit of {max_bytes:,} "
            "(TEXTGEN_MAX_RESULT_MB); ask for fewer tokens or samples")
    return data


def result_summary(job_id, attempt, samples, stored_bytes):
    """What the job record keeps of its result."""
    return {"sample_count": len(samples), "bytes": stored_bytes, "attempt": attempt,
            "url": result_path(job_id),
            "preview": [{"text": sample["text"][:PREVIEW_CHARS],
                         "temperature": sample["temperature"]}
                        for sample in samples[:PREVIEW_SAMPLES]]}


def shown(record):
    """The job record with its result as the API shows it. A generation job recorded
    before results were artifacts holds its samples inline; it is summarized the same
    way (GET .../result then answers from the record)."""
    result = record.get("result")
    if not result or "samples" not in result:
        return record
    samples = result["samples"]
    size = len(json.dumps({"samples": samples}, ensure_ascii=False).encode("utf-8"))
    return {**record, "result": result_summary(record["id"], record["attempt"], samples,
                                               size)}


def check_result_size(spec, max_bytes):
    """GenerationTooLargeError (422) when the samples `spec` asks for cannot fit in
    `max_bytes`: every generated token is at least one byte, so this bound never refuses
    a result that would fit."""
    samples = spec.num_samples * len(spec.temperatures)
    least_bytes = samples * spec.length
    if least_bytes > max_bytes:
        raise GenerationTooLargeError(
            f"{samples} samples of {spec.length:,} tokens take at least {least_bytes:,} "
            f"bytes, over the limit of {max_bytes:,} (TEXTGEN_MAX_RESULT_MB); ask for "
            "fewer tokens or samples", field="length",
            extra={"least_bytes": least_bytes, "limit_bytes": max_bytes})
