"""How jobs and models read as plain text in the command line's answers: a job's state in
a few words, its status lines, an event's line, the model a training job trains and why.
(follow.py has the lines of a followed job; both are plain text, no colour.)"""

from datetime import UTC, datetime

from client.cli_io import num
from client.follow import duration, end_lines, epoch_line, quoted
from client.records import JobStatus


def job_summary(job):
    """A job's state in a few words: its progress, its model, or its error."""
    status = job["status"]
    if status == JobStatus.QUEUED:
        return f"waiting for attempt {job['attempt']}" if job["attempt"] > 1 else "waiting"
    if status == JobStatus.RUNNING and job["type"] == "train":
        p = job["progress"]
        if not p.get("steps"):  # nothing reported yet: the worker prepares the data
            return "starting"
        return f"epoch {p['epoch']}/{p['epochs']} step {p['step']}/{p['steps']}"
    if status == JobStatus.RUNNING and job["type"] == "generate" and job["progress"].get(
            "samples"):
        p = job["progress"]
        return (f"{p['samples_done']}/{p['samples']} samples done, {p['fraction']:.0%} of "
                f"tokens, {p['chars_done']:,} chars")
    if status == JobStatus.FAILED and job.get("error"):
        return job["error"]["code"]
    result = job.get("result") or {}
    if "model_id" in result:
        return result["model_id"]
    if job["type"] == "generate":
        return f"from {job.get('model_id')}"
    if job["type"] == "evaluate":
        return f"of {', '.join(job.get('model_ids') or [])}"
    return None


def status_lines(job):
    """`textgen status`: the job, where it is (or stopped), its attempts, how it ended."""
    p, m = job["progress"], job.get("metrics") or {}
    lines = [f"{job['id']}  {job['type']}  {job['status']}  attempt {job['attempt']}",
             # The first attempt's start: started_at is the last one's.
             f"created {job['created_at']}  started "
             f"{(job.get('attempts') or [job])[0]['started_at'] or '-'}  "
             f"finished {job['finished_at'] or '-'}"]
    ended = JobStatus(job["status"]).is_terminal
    if job["type"] == "train":
        # A job that ended is where it stopped, not on its way: no step, share or ETA.
        losses = f"  loss {num(m.get('loss')) or '-'}  val {num(m.get('val_loss')) or '-'}"
        if ended:
            lines.append(f"epochs run {p['epoch']}/{p.get('epochs')}{losses}" if p["epoch"]
                         else "no epoch run")
        elif not p.get("steps"):  # nothing reported yet
            lines.append(job_summary(job))
        else:
            lines.append(f"epoch {p['epoch']}/{p['epochs']}  step {p['step']}/{p['steps']}  "
                         f"{p['fraction']:.0%}" + (f"  eta {duration(p['eta_seconds'])}"
                                                   if p.get("eta_seconds") is not None
                                                   else "") + losses)
    elif job["type"] == "generate" and not ended and p.get("samples"):
        lines.append(job_summary(job))
    lines += attempt_lines(job)
    if ended:
        lines += end_lines(job)
    return lines


def _seconds_between(start, end=None):
    """Seconds from one ISO 8601 time to another (None: now)."""
    stop = datetime.fromisoformat(end) if end else datetime.now(UTC)
    return (stop - datetime.fromisoformat(start)).total_seconds()


def attempt_lines(job):
    """For a job that ran more than once: the time in all, and each attempt's time, worker
    and outcome (a single attempt's times are the job's own)."""
    attempts = job.get("attempts") or []
    if len(attempts) < 2:
        return []
    total_s = _seconds_between(attempts[0]["started_at"], job.get("finished_at"))
    lines = [f"{len(attempts)} attempts, {duration(total_s)} from the first start"
             + ("" if job.get("finished_at") else " so far")]
    for a in attempts:
        outcome = (f"lost: {a.get('reason') or 'its worker stopped answering'}"
                   if a["outcome"] == "lost" else a["outcome"])
        lines.append(f"  attempt {a['attempt']}  "
                     f"{duration(_seconds_between(a['started_at'], a['ended_at']))}  on "
                     f"{a['worker'] or '-'}  {outcome}")
    return lines


def event_line(event, epochs):
    data = event["data"]
    if event["type"] == "status":
        details = {k: v for k, v in data.items() if k != "status"}
        text = data["status"] + "".join(f"  {k} {v}" for k, v in details.items())
    elif event["type"] == "epoch_end":
        text = epoch_line(data, epochs) + (f"  sample {quoted(data['sample'])}"
                                           if data.get("sample") else "")
    elif event["type"] == "progress":  # a training's step, twice a second at most
        text = (f"epoch {data['epoch']}/{data['epochs']}  step {data['step']}/{data['steps']}"
                f"  loss {num(data.get('loss')) or '-'}  eta {duration(data.get('eta_seconds'))}")
    elif event["type"] == "text":  # a generation's deltas, one sample's each
        text = "  ".join(f"sample {d['sample']}{' (end)' * d['end']} {quoted(d['text'])}"
                         for d in data["deltas"])
    else:
        text = "  ".join(f"{k} {v}" for k, v in data.items())
    return f"{event['time']}  {event['type']:<9}  {text}"


def model_note(job, sections, corpus_chars):
    """The model the job will train, and why that one: what `make demo` prints too."""
    spec = job["spec"]
    model, training = spec["model"], spec["training"]
    shape = (f"{model['layers']}x{model['units']} LSTM, dropout {model['dropout']:g}, "
             f"learning rate {training['learning_rate']:g}, windows of "
             f"{training['seq_length']}")
    if job.get("init_from_model"):
        why = f"the shape of model {job['init_from_model']}, which it continues"
    elif sections.get("model"):
        why = "as you asked"
    elif (spec["preset"] == "default" and "max_seconds" in sections.get("training", {})
          and spec["preprocessing"].get("level", "char") == "char"):
        # shared/sizing/model_sizing.py's rule; naming any model field turns it off.
        why = (f"sized by the server for a {training['max_seconds']:g} s budget on "
               f"{corpus_chars():,} characters; --units or --layers choose it yourself")
    else:
        why = f"the {spec['preset']} preset's"
    return f"model: {shape} ({why})"


def bits(metrics):
    """Bits per character (or per word token) of a model or a job's metrics, with the unit."""
    if metrics.get("bits_per_char") is not None:
        return f"{metrics['bits_per_char']:.3f} bits/char"
    if metrics.get("bits_per_token") is not None:
        return f"{metrics['bits_per_token']:.3f} bits/token"
    return None
