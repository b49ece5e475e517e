"""The command line's API commands: each builds a Client, calls it, prints the answer.

Plain text for people (one line per item, no colour off a terminal), or with --json the
API's own JSON: an object, a list for listings, one object a line for event streams.
Errors are raised as ClientError and printed as one line by cli.main.
"""

import json
from pathlib import Path

from client.cli_io import client, emit, note, num, table
from client.errors import ClientError
from client.follow import ask_to_cancel, duration, end_lines, epoch_line, follow, quoted
from client.records import JobStatus

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # 130: Ctrl-C, as shells report it
_PREFER_WAIT_S = 60  # generate: how long the API may hold the answer (its own maximum)


# --- corpora and training -----------------------------------------------------------


def _corpus_of(api, path, name=None):
    """The corpus of a file: the one uploaded before as the same bytes, else a new one."""
    corpus = api.find_upload(path)
    if corpus:
        note(f"{path}: same bytes as corpus {corpus['id']} ({corpus['name']}, uploaded "
             f"{corpus['created_at']}): reusing it")
        return corpus
    corpus = api.upload_corpus(path, name)
    note(f"{path}: uploaded as corpus {corpus['id']} ({corpus['chars']:,} characters, "
         f"{corpus['encoding']}, {corpus['vocab_size']} distinct)")
    return corpus


def upload(args):
    corpus = _corpus_of(client(args), args.file, args.name)
    emit(args, corpus, corpus["id"])
    return EXIT_OK


def _spec_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text  # --set preprocessing.level=word: a bare word is a string


def _sections(args):
    """The request's preprocessing, model and training overrides from the options."""
    sections = {}
    flags = {"model.units": args.units, "model.layers": args.layers,
             "training.epochs": args.epochs, "training.seq_length": args.seq_length,
             "training.max_seconds": args.max_seconds}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key.count(".") != 1:
            raise ClientError(f"--set {item}: expected SECTION.FIELD=VALUE, such as "
                              "training.batch_size=16")
        flags[key] = _spec_value(value)
    for key, value in flags.items():
        if value is not None:
            section, field = key.split(".")
            sections.setdefault(section, {})[field] = value
    return sections


def train(args):
    api = client(args)
    source = Path(args.source)
    if source.is_file():
        corpus_id = _corpus_of(api, source)["id"]
    elif args.source.startswith("cor_"):
        corpus_id = args.source
    else:
        raise ClientError(f"{args.source}: no such file, and not a corpus id (cor_...)")
    job = api.train(corpus_id, args.preset, init_from_model=args.init_from,
                    **_sections(args))
    if not args.follow:
        emit(args, job, job["id"])
        return EXIT_OK
    if not args.json:
        print(job["id"], flush=True)
    return _follow(api, job["id"], args)


def _follow(api, job_id, args):
    try:
        job = follow(api, job_id, json_lines=args.json)
    except KeyboardInterrupt:
        ask_to_cancel(api, job_id)
        return EXIT_INTERRUPTED
    return EXIT_OK if job["status"] == JobStatus.SUCCEEDED else EXIT_FAILED


# --- jobs ---------------------------------------------------------------------------


def _job_summary(job):
    """A job's state in a few words: its progress, its model, or its error."""
    status = job["status"]
    if status == JobStatus.RUNNING and job["type"] == "train":
        p = job["progress"]
        return f"epoch {p['epoch']}/{p.get('epochs')} step {p['step']}/{p.get('steps')}"
    if status == JobStatus.FAILED and job.get("error"):
        return job["error"]["code"]
    result = job.get("result") or {}
    if "model_id" in result:
        return result["model_id"]
    if job["type"] == "generate":
        return f"from {job.get('model_id')}"
    return None


def jobs(args):
    found = _first(client(args).jobs(status=args.status, type=args.type), args.limit)
    emit(args, found, table([(j["id"], j["type"], j["status"], j["created_at"],
                              _job_summary(j)) for j in found]))
    return EXIT_OK


def _first(items, limit):
    found = []
    for item in items:
        if len(found) >= limit:
            break
        found.append(item)
    return found


def status(args):
    api = client(args)
    if args.follow:
        return _follow(api, args.job_id, args)
    job = api.job(args.job_id)
    p, m = job["progress"], job.get("metrics") or {}
    lines = [f"{job['id']}  {job['type']}  {job['status']}  attempt {job['attempt']}",
             f"created {job['created_at']}  started {job['started_at'] or '-'}  "
             f"finished {job['finished_at'] or '-'}"]
    if job["type"] == "train":
        lines.append(f"epoch {p['epoch']}/{p.get('epochs')}  step {p['step']}/"
                     f"{p.get('steps')}  {p['fraction']:.0%}  eta "
                     f"{duration(p.get('eta_seconds'))}  loss "
                     f"{num(m.get('loss')) or '-'}  val {num(m.get('val_loss')) or '-'}")
    if JobStatus(job["status"]).is_terminal:
        lines += end_lines(job)
    emit(args, job, lines)
    return EXIT_OK


def _event_line(event, epochs):
    data = event["data"]
    if event["type"] == "status":
        details = {k: v for k, v in data.items() if k != "status"}
        text = data["status"] + "".join(f"  {k} {v}" for k, v in details.items())
    elif event["type"] == "epoch_end":
        text = epoch_line(data, epochs) + (f"  sample {quoted(data['sample'])}"
                                           if data.get("sample") else "")
    else:
        text = "  ".join(f"{k} {v}" for k, v in data.items())
    return f"{event['time']}  {event['type']:<9}  {text}"


def events(args):
    api = client(args)
    job = api.job(args.job_id)
    epochs = (job["spec"].get("training") or {}).get("epochs", "?")
    stream = api.stream_events(args.job_id) if args.follow else api.all_events(args.job_id)
    try:
        for event in stream:
            print(json.dumps(event, ensure_ascii=False) if args.json
                  else _event_line(event, epochs), flush=True)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # only stops reading: events never change a job
    return EXIT_OK


def cancel(args):
    job = client(args).cancel(args.job_id)
    emit(args, job, f"{job['id']} {job['status']}")
    return EXIT_OK


# --- models, corpora, deleting --------------------------------------------------------


def models(args):
    found = _first(client(args).models(), args.limit)
    emit(args, found, table([(m["id"], m["created_at"], m["preset"], m["corpus_id"],
                              f"epoch {m.get('best_epoch')}",
                              num(m["metrics"].get("bits_per_char")) or "-")
                             for m in found]))
    return EXIT_OK


def corpora(args):
    found = _first(client(args).corpora(), args.limit)
    emit(args, found, table([(c["id"], c["created_at"], f"{c['chars']:,} chars",
                              f"{c['vocab_size']} distinct", c["name"]) for c in found]))
    return EXIT_OK


def download(args):
    directory = args.output or Path(args.model_id)
    written = client(args).download(args.model_id, directory)
    emit(args, {"model_id": args.model_id, "directory": str(directory),
                "files": [str(path) for path in written]},
         f"{args.model_id}: {', '.join(path.name for path in written)} in {directory}")
    return EXIT_OK


def delete(args):
    api = client(args)
    {"corpus": api.delete_corpus, "model": api.delete_model, "job": api.delete_job}[
        args.kind](args.id)
    emit(args, {"deleted": args.id, "kind": args.kind}, f"deleted {args.kind} {args.id}")
    return EXIT_OK


# --- generating, health, plots ------------------------------------------------------


def generate(args):
    api = client(args)
    temperature = args.temperature
    if temperature and len(temperature) == 1:
        temperature = temperature[0]
    job = api.generate(args.model_id, prompt=args.prompt, length=args.length,
                       temperature=temperature, num_samples=args.num_samples,
                       seed=args.seed, wait_s=None if args.no_wait else _PREFER_WAIT_S)
    if args.no_wait:
        emit(args, job, job["id"])
        return EXIT_OK
    if not JobStatus(job["status"]).is_terminal:  # longer than the API would hold it
        job = api.wait(job["id"])
    if job["status"] != JobStatus.SUCCEEDED:
        if args.json:
            emit(args, job, "")
        note(f"textgen: {' '.join(end_lines(job))}")
        return EXIT_FAILED
    found = api.samples(job["id"])
    emit(args, {**job, "samples": found}, _sample_lines(found))  # the job has a preview
    return EXIT_OK


def samples(args):
    found = client(args).samples(args.job_id)
    emit(args, {"samples": found}, _sample_lines(found))
    return EXIT_OK


def _sample_lines(samples):
    lines = []
    for i, sample in enumerate(samples, 1):
        if len(samples) > 1:
            lines.append(f"--- sample {i} (temperature {sample['temperature']:g}) ---")
        lines.append(sample["text"])  # the prompt, then what the model wrote
    return lines


def health(args):
    health = client(args).health()
    workers = ", ".join(f"{queue} {n}" for queue, n in health["workers"].items())
    emit(args, health, f"{health['status']}: redis {'up' if health['redis'] else 'down'}; "
                       f"workers: {workers or 'none'}")
    return EXIT_OK if health["status"] == "ok" else EXIT_FAILED


def plot(args):
    from client.plot import plot_losses  # matplotlib: loaded for this command only

    api = client(args)
    job = api.job(args.job_id)
    epochs = [e["data"] for e in api.all_events(args.job_id)
              if e["type"] == "epoch_end"]
    if not epochs:
        raise ClientError(f"job {args.job_id} has no finished epoch to plot yet")
    plot_losses(job, epochs, args.output)
    emit(args, {"job_id": job["id"], "output": str(args.output), "epochs": len(epochs)},
         f"{args.output}: losses of {job['id']} over {len(epochs)} epochs")
    return EXIT_OK
