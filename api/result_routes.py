"""Results: a finished generation job's samples, served from the artifact store."""

from flask import Blueprint

from api.auth import current_owner
from api.context import services
from api.downloads import send_inline
from api.openapi import operation
from api.responses import respond
from shared.contracts.errors import ArtifactMissingError, ConflictError, NotFoundError
from shared.stores.jobs import JobStatus, JobType
from shared.contracts.schemas import Samples

bp = Blueprint("results", __name__, url_prefix="/v1/jobs")


@bp.get("/<job_id>/result")
@operation("Every sample of a generation job that succeeded (its record has a preview)",
           {200: Samples, 404: None, 409: None})
def get_result(job_id):
    svc = services()
    job = svc.jobs.get(job_id, current_owner())
    if job["type"] == JobType.EVALUATE:
        raise NotFoundError(f"job {job_id} is an evaluation: its result, the table, is in "
                            "the job itself (GET /v1/jobs/<id>)")
    if job["type"] != JobType.GENERATE:
        raise NotFoundError(f"job {job_id} is a training job: its result is the model "
                            f"{(job.get('result') or {}).get('model_id') or '(none yet)'}")
    if job["status"] != JobStatus.SUCCEEDED:
        raise ConflictError(f"job {job_id} is {job['status']}; a generation job has "
                            "samples once it succeeded")
    if "samples" in job["result"]:  # recorded before results were artifacts
        return respond(Samples.model_validate(job["result"]))
    try:
        stored = svc.artifacts.result_file(job_id, job["result"]["attempt"])
    except ArtifactMissingError as e:
        raise NotFoundError(f"the samples of job {job_id} are not in the artifact "
                            "store") from e
    return send_inline(stored, "application/json")
