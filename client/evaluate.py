"""`textgen evaluate`: score models side by side and print the table."""

from client.cli_io import client, emit, note
from client.commands import EXIT_FAILED, EXIT_OK, _corpus_of
from client.evaluation_text import evaluation_table
from client.records import JobStatus


def evaluate(args):
    api = client(args)
    if args.file is not None:
        corpus_id, part = _corpus_of(api, args.file)["id"], "all"
    else:
        corpus_id, part = args.corpus, "all" if args.all else None
    job = api.evaluate(args.model_ids, corpus_id=corpus_id, part=part,
                       holdout_fraction=args.holdout)
    note(f"{job['id']}: {_text_line(job['spec'])}")
    job = api.wait(job["id"])
    if job["status"] != JobStatus.SUCCEEDED:
        if args.json:
            emit(args, job, "")
        error = job.get("error") or {}
        note(f"textgen: {job['id']} {job['status']}: {error.get('code')}: "
             f"{error.get('message')}")
        return EXIT_FAILED
    emit(args, job, evaluation_table(job["result"]))
    return EXIT_OK


def _text_line(spec):
    if spec.get("corpus_id") is None:
        return f"scoring a text of {len(spec['text']):,} characters"
    if spec["part"] == "all":
        return f"scoring all of corpus {spec['corpus_id']}"
    return (f"scoring the last {spec['holdout_fraction']:g} of corpus {spec['corpus_id']} "
            "(held out)")
