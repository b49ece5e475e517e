"""The command line's API commands: each builds a Client, calls it, prints the answer.

Plain text for people (one line per item, no colour off a terminal), or with --json the
API's own JSON: an object, a list for listings, one object a line for event streams.
Errors are raised as ClientError and printed as one line by cli.main.
"""

import json
import sys
from pathlib import Path

from client.cli_io import client, confirm, emit, note, table
from client.errors import ClientError
from client.follow import ask_to_cancel, end_lines, follow, sample_heading, sample_text
from client.job_text import bits, event_line, job_summary, model_note, status_lines
from client.records import JobStatus
from client.streamed_text import stream_samples

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # 130: Ctrl-C, as shells report it
_PREFER_WAIT_S = 60  # generate: how long the API may hold the answer (its own maximum)


# --- corpora and training -----------------------------------------------------------


def _corpus_of(api, path, name=None):
    """The corpus of a file: the one uploaded before as the same bytes, else a new one."""
    if not path.is_file():
        raise ClientError(f"{path}: {'a directory' if path.is_dir() else 'no such file'}; "
                          "give the path of a text file")
    try:  # the file is read twice: its hash, then (if new) its upload
        corpus = api.find_upload(path)
        if corpus:
            note(f"{path}: same bytes as corpus {corpus['id']} ({corpus['name']}, uploaded "
                 f"{corpus['created_at']}): reusing it")
            return corpus
        corpus = api.upload_corpus(path, name)
    except OSError as e:  # unreadable (the API's own errors are ClientErrors)
        raise ClientError(f"{path}: cannot read it ({e.strerror or e})") from e
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
    return spec_sections(args.set, {
        "model.units": args.units, "model.layers": args.layers,
        "training.epochs": args.epochs, "training.seq_length": args.seq_length,
        "training.max_seconds": args.max_seconds})


def spec_sections(items, flags=None):
    """{section: {field: value}} from SECTION.FIELD=VALUE `items` and `flags` (dotted
    name -> value or None)."""
    sections = {}
    flags = dict(flags or {})
    for item in items:
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
        corpus = _corpus_of(api, source)
    elif args.source.startswith("cor_"):
        corpus = {"id": args.source}  # the API says whether there is one
    else:
        raise ClientError(f"{args.source}: no such file, and not a corpus id (cor_...)")
    sections = _sections(args)
    job = api.train(corpus["id"], args.preset, init_from_model=args.init_from, **sections)
    if args.json and not args.follow:
        emit(args, job, "")
        return EXIT_OK
    if not args.json:
        print(job["id"], flush=True)
        note(model_note(job, sections, lambda: corpus.get("chars")
                         or api.corpus(corpus["id"])["chars"]))
    return _follow(api, job["id"], args) if args.follow else EXIT_OK


def _follow(api, job_id, args):
    try:
        job = follow(api, job_id, json_lines=args.json)
    except KeyboardInterrupt:
        ask_to_cancel(api, job_id)
        return EXIT_INTERRUPTED
    return EXIT_OK if job["status"] == JobStatus.SUCCEEDED else EXIT_FAILED


# --- jobs ---------------------------------------------------------------------------


def _listing(args, found, what, header, rows):
    """A list as JSON, or as a table under its header; an empty one says so on stderr."""
    if found or args.json:
        emit(args, found, table(header, rows))
    else:
        note(f"no {what} yet")
    return EXIT_OK


def jobs(args):
    found = _first(client(args).jobs(status=args.status, type=args.type), args.limit)
    return _listing(args, found, "jobs", ("JOB", "TYPE", "STATUS", "CREATED (UTC)", "LOSS",
                                          "PROGRESS OR RESULT"),
                    [(j["id"], j["type"], j["status"], j["created_at"],
                      bits(j.get("metrics") or {}), job_summary(j)) for j in found])


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
    emit(args, job, status_lines(job))
    return EXIT_OK


def events(args):
    api = client(args)
    job = api.job(args.job_id)
    epochs = (job["spec"].get("training") or {}).get("epochs", "?")
    stream = api.stream_events(args.job_id) if args.follow else api.all_events(args.job_id)
    try:
        for event in stream:
            print(json.dumps(event, ensure_ascii=False) if args.json
                  else event_line(event, epochs), flush=True)
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
    return _listing(args, found, "models", ("MODEL", "CREATED (UTC)", "PRESET", "CORPUS",
                                            "BEST EPOCH", "LOSS"),
                    [(m["id"], m["created_at"], m["preset"], m["corpus_id"],
                      m.get("best_epoch"), bits(m["metrics"])) for m in found])


def corpora(args):
    found = _first(client(args).corpora(), args.limit)
    return _listing(args, found, "corpora", ("CORPUS", "CREATED (UTC)", "CHARACTERS",
                                             "DISTINCT", "NAME"),
                    [(c["id"], c["created_at"], f"{c['chars']:,}", c["vocab_size"],
                      c["name"]) for c in found])


def _check_file_path(path, what):
    """Raise a one-line ClientError, before any work, unless `path` can become a file:
    its directory exists (a typo there should not be created) and it is no directory."""
    parent = path.parent
    if not parent.is_dir():
        raise ClientError(f"{path}: no directory {parent} to write the {what} in; create "
                          f"it (mkdir -p {parent}) or give another path")
    if path.is_dir():
        raise ClientError(f"{path} is a directory; give the path of the {what}, such as "
                          f"{path / 'loss.png'}")


def _cannot_write(path, error):
    return ClientError(f"{path}: cannot write it ({error.strerror or error})")


def download(args):
    directory = args.output or Path(args.model_id)
    if directory.exists() and not directory.is_dir():
        raise ClientError(f"{directory} is a file; give a directory for the model's files")
    try:
        written = client(args).download(args.model_id, directory)
    except OSError as e:  # the API's errors are ClientErrors: this is the local disk's
        raise _cannot_write(directory, e) from e
    emit(args, {"model_id": args.model_id, "directory": str(directory),
                "files": [str(path) for path in written]},
         f"{args.model_id}: {', '.join(path.name for path in written)} in {directory}")
    return EXIT_OK


_KINDS = {"cor_": "corpus", "mdl_": "model", "job_": "job"}  # id prefix -> kind
_WHAT_GOES = {"corpus": "its text", "model": "its files",
              "job": "its events and checkpoints; its model stays"}


def _delete_target(target):
    """(kind, id) from `delete [KIND] ID`: the kind is the id's prefix's unless given."""
    if len(target) == 2 and target[0] in _WHAT_GOES:
        return target[0], target[1]
    if len(target) == 1:
        kind = _KINDS.get(target[0][:4])
        if kind:
            return kind, target[0]
        raise ClientError(f"{target[0]}: not an id of a corpus (cor_...), model (mdl_...) "
                          "or job (job_...); give the kind: textgen delete corpus|model|job ID")
    raise ClientError("expected ID, or KIND ID with KIND one of corpus, model, job")


def delete(args):
    kind, target_id = _delete_target(args.target)
    if not args.yes and not confirm(f"delete {kind} {target_id} ({_WHAT_GOES[kind]})?"):
        note(f"{kind} {target_id} not deleted")
        return EXIT_FAILED
    api = client(args)
    {"corpus": api.delete_corpus, "model": api.delete_model, "job": api.delete_job}[
        kind](target_id)
    emit(args, {"deleted": target_id, "kind": kind}, f"deleted {kind} {target_id}")
    return EXIT_OK


# --- generating, health, plots ------------------------------------------------------


def generate(args):
    api = client(args)
    temperature = args.temperature
    if temperature and len(temperature) == 1:
        temperature = temperature[0]
    job = api.generate(args.model_id, prompt=args.prompt, length=args.length,
                       temperature=temperature, top_k=args.top_k, top_p=args.top_p,
                       stop=args.stop, num_samples=args.num_samples, seed=args.seed,
                       wait_s=None if args.no_wait or args.stream else _PREFER_WAIT_S)
    if args.no_wait:
        emit(args, job, job["id"])
        return EXIT_OK
    if args.stream:
        return _stream(api, job, args)
    if not JobStatus(job["status"]).is_terminal:  # longer than the API would hold it
        job = api.wait(job["id"])
    if job["status"] != JobStatus.SUCCEEDED:
        if args.json:
            emit(args, job, "")
        note(f"textgen: {' '.join(end_lines(job))}")
        return EXIT_FAILED
    found = api.samples(job["id"])
    emit(args, {**job, "samples": found},  # the job has a preview
         _sample_lines(found, args.prompt))
    return EXIT_OK


def _stream(api, job, args):
    """The text as it is generated (--json: each event as a JSON line, then the job)."""
    if args.json:
        return _follow(api, job["id"], args)
    try:
        job = stream_samples(api, job, sys.stdout)
    except KeyboardInterrupt:
        ask_to_cancel(api, job["id"])
        return EXIT_INTERRUPTED
    if job["status"] != JobStatus.SUCCEEDED:
        note(f"textgen: {' '.join(end_lines(job))}")
        return EXIT_FAILED
    return EXIT_OK


def samples(args):
    api = client(args)
    found = api.samples(args.job_id)
    emit(args, {"samples": found}, _sample_lines(found, api.job(args.job_id)["spec"].get(
        "prompt")))
    return EXIT_OK


def _sample_lines(samples, prompt):
    lines = []
    for i, sample in enumerate(samples, 1):
        if len(samples) > 1:
            lines.append(sample_heading(i, sample["temperature"]))
        lines.append(sample_text(sample, prompt))
    return lines


def health(args):
    health = client(args).health()
    workers = ", ".join(f"{queue} {n}" for queue, n in health["workers"].items())
    emit(args, health, f"{health['status']}: redis {'up' if health['redis'] else 'down'}; "
                       f"workers: {workers or 'none'}")
    return EXIT_OK if health["status"] == "ok" else EXIT_FAILED


def plot(args):
    from client.plot import plot_losses  # matplotlib: loaded for this command only

    _check_file_path(args.output, "PNG file")
    api = client(args)
    job = api.job(args.job_id)
    if job["type"] != "train":
        raise ClientError(f"job {job['id']} is a {job['type']} job: only training jobs "
                          "have losses to plot")
    epochs = [e["data"] for e in api.all_events(args.job_id)
              if e["type"] == "epoch_end"]
    if not epochs:
        raise ClientError(f"job {args.job_id} has no finished epoch to plot yet")
    try:
        plot_losses(job, epochs, args.output)
    except OSError as e:  # permission denied, a full disk: one line, not a traceback
        raise _cannot_write(args.output, e) from e
    emit(args, {"job_id": job["id"], "output": str(args.output), "epochs": len(epochs)},
         f"{args.output}: losses of {job['id']} over {len(epochs)} epochs")
    return EXIT_OK
