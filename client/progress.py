"""Showing a job's progress on a terminal: one line per epoch, redrawn while it runs."""

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

    def close(self):
        if self.tty and self.last_line is not None:
            self.stream.write("\n")
            self.stream.flush()
