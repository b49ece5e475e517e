"""The terminal's live display while following a training job (rich): a bar for the running
epoch with its step, running loss, speed and time left, and lines printed above it.

An epoch's bar gives way to that epoch's line when the epoch ends, so the screen keeps one
line (and a sample) per finished epoch and one bar. Called from two threads (the event
stream's and the poller's): rich's Progress locks itself, and `lock` keeps an ended
epoch's bar from coming back when a late poll reports it.
"""

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
)
from rich.text import Text

from client.follow import duration, speed


class _Speed(ProgressColumn):
    """Characters (or tokens) per second as the worker timed them; else training steps per
    second, as rich measures them from the updates."""

    def __init__(self, level):
        super().__init__()
        self.level = level

    def render(self, task):
        if task.fields.get("targets_per_s"):
            return Text(speed(task.fields["targets_per_s"], self.level), style="cyan")
        return Text(f"{task.speed:.1f} steps/s" if task.speed else "", style="cyan")


class _EpochTimeLeft(ProgressColumn):
    """The epoch's time left at the speed rich measured, never past the job's ETA (a time
    budget may end the epoch sooner); nothing until there is a speed to go by."""

    def render(self, task):
        left_s, job_s = task.time_remaining, task.fields.get("eta_s")
        if left_s is None:
            return Text("")
        return Text(duration(left_s if job_s is None else min(left_s, job_s)), style="cyan")


class EpochBars:
    def __init__(self, out, level="char"):
        self.console = Console(file=out)
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), _Speed(level), _EpochTimeLeft(),
            TextColumn("[dim]{task.fields[job_eta]}"),
            console=self.console, transient=True)
        self.tasks = {}  # epoch -> rich task id
        self.ended = 0  # the last epoch whose line was printed
        self.lock = threading.Lock()

    def start(self):
        self.progress.start()

    def stop(self):
        self.progress.stop()

    def print(self, line, style=None):
        self.console.print(Text(line, style=style or ""), soft_wrap=True)

    def print_sample(self, sample):
        width = max(20, self.console.width - 4)
        shown = sample.replace("\n", "⏎")
        if len(shown) > width:
            shown = shown[:width - 1] + "…"
        self.console.print(Text("  " + shown, style="dim"), soft_wrap=True)

    def show(self, progress, metrics):
        """The bar of the epoch the job is in, at its step."""
        epoch = progress["epoch"]
        fields = {"epoch": f"{epoch}/{progress.get('epochs') or '?'}",
                  "loss": "-" if metrics.get("loss") is None else f"{metrics['loss']:.3f}",
                  "eta_s": progress.get("eta_seconds"),
                  "targets_per_s": progress.get("targets_per_s"),
                  # None until the worker has timed some steps: nothing, not a guess
                  "job_eta": ("" if progress.get("eta_seconds") is None
                              else f"job eta {duration(progress['eta_seconds'])}")}
        with self.lock:
            if epoch <= self.ended:
                return
            if epoch not in self.tasks:
                self.tasks[epoch] = self.progress.add_task("", total=progress.get("steps"),
                                                           **fields)
            self.progress.update(self.tasks[epoch], completed=progress["step"],
                                 total=progress.get("steps"), **fields)

    def epoch_ended(self, epoch):
        with self.lock:
            self.ended = max(self.ended, epoch)
            for done in [e for e in self.tasks if e <= epoch]:
                self.progress.remove_task(self.tasks.pop(done))
