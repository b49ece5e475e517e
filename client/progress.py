"""Showing a job's progress on a terminal: one line per epoch, redrawn while it runs, and
the sample of text the model wrote at the end of each epoch."""

import sys


def _num(value, fmt="{:.3f}"):
    return "-" if value is None else fmt.format(value)


def describe(job):
    """One line: status, epoch, a bar, step, loss, val loss, ETA."""
    p = job.get("progress") or {}
    m = job.get("metrics") or {}
    width = 20
    filled = int(round((p.get("fraction") or 0.0) * width))
    bar = "#" * filled + "." * (width - filled)
    eta = p.get("eta_seconds")
    return (f"{job['status']:<9} epoch {p.get('epoch', 0)}/{_num(p.get('epochs'), '{}')} "
            f"[{bar}] step {p.get('step', 0)}/{_num(p.get('steps'), '{}')} "
            f"loss {_num(m.get('loss'))} val {_num(m.get('val_loss'))} "
            f"eta {_num(eta, '{:.0f}s')}")


class ProgressPrinter:
    """Call with each polled job: redraws the line on a terminal, keeps a line per epoch."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.last_line = None
        self.last_epoch = None

    def __call__(self, job):
        line = describe(job)
        epoch = (job.get("progress") or {}).get("epoch")
        if line == self.last_line:
            return
        if self.tty:
            end_previous = "\n" if self.last_epoch not in (None, epoch) else "\r"
            self.stream.write(("" if self.last_line is None else end_previous) + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last_line, self.last_epoch = line, epoch

    def note(self, text):
        """Print a line of its own between progress lines."""
        if self.tty and self.last_line is not None:
            self.stream.write("\n")
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last_line = None

    def close(self):
        if self.tty and self.last_line is not None:
            self.stream.write("\n")
            self.stream.flush()


_SAMPLE_PREVIEW_CHARS = 100  # of the 200-character epoch samples: one terminal line or so


class EpochSamples:
    """Call with each polled job: prints each new epoch's sample through `printer`."""

    def __init__(self, client, job_id, printer):
        self.client = client
        self.job_id = job_id
        self.printer = printer
        self.cursor = "0"

    def __call__(self, job):
        for event in self.client.events(self.job_id, after=self.cursor):
            self.cursor = event["id"]
            if event["type"] == "epoch_end" and event["data"].get("sample"):
                preview = event["data"]["sample"][:_SAMPLE_PREVIEW_CHARS].replace("\n", " / ")
                self.printer.note(f"  epoch {event['data']['epoch']} writes: {preview}")


def follow(client, job_id, poll_s=1.0):
    """Wait for the job, showing progress and epoch samples; return the final job."""
    printer = ProgressPrinter()
    samples = EpochSamples(client, job_id, printer)

    def on_update(job):
        printer(job)
        samples(job)

    job = client.wait(job_id, on_update=on_update, poll_s=poll_s)
    printer.close()
    return job
