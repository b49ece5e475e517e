"""Issue 7: how long a killed training worker's job takes to run again, with default leases.

Starts `make up`'s stack (embedded Redis, gunicorn, one train and one generate worker)
with the shipped settings (lease 30 s, reaper every 5 s), trains the `default` preset on
frankenstein-2.txt for 6 epochs, and SIGKILLs the train worker once epoch 3 has ended.
The stack's supervisor restarts the worker; the reaper hands the job on when its lease
expires. Per round it prints the seconds from the kill until attempt 2 runs and until
its first epoch ends, checks that the job succeeds with epochs 1..6 each reported once,
and at the end the longest time over the rounds.

    .venv/bin/python -m bench.resume_after_kill [--rounds 3]
"""

import argparse
import os
import signal
import tempfile
import time
from pathlib import Path

from bench import HANDOUTS
from client.api_client import Client
from shared.stack.runner import LocalStack, free_port

TOKEN = "resume-bench-token-0123456789"
EPOCHS = 6
KILL_AFTER_EPOCH = 3


def epochs_reported(api, job_id):
    return [e["data"]["epoch"] for e in api.all_events(job_id) if e["type"] == "epoch_end"]


def wait_until(predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.2)
    raise SystemExit(f"gave up after {timeout_s} s")


def one_round(api, stack, corpus_id):
    job_id = api.train(corpus_id, "default", training={"epochs": EPOCHS, "patience": None})["id"]
    wait_until(lambda: KILL_AFTER_EPOCH in epochs_reported(api, job_id), 600)
    os.kill(stack.processes["worker-train"].pid, signal.SIGKILL)
    killed = time.monotonic()
    def attempt_2_running():
        job = api.job(job_id)
        return job["attempt"] == 2 and job["status"] == "running"

    running = wait_until(attempt_2_running, 300)
    epoch_after = wait_until(lambda: len(epochs_reported(api, job_id)) > KILL_AFTER_EPOCH, 300)
    done = api.wait(job_id, poll_s=0.5, timeout_s=600)
    epochs = epochs_reported(api, job_id)
    ok = done["status"] == "succeeded" and epochs == list(range(1, EPOCHS + 1))
    return running - killed, epoch_after - killed, ok, done, epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, \
            LocalStack(Path(scratch) / "data", port=free_port(),
                       env={"TEXTGEN_API_TOKENS": f"bench:{TOKEN}"}) as stack:
        api = Client(stack.url, token=TOKEN, timeout_s=60)
        corpus_id = api.upload_corpus(HANDOUTS / "corpora" / "frankenstein-2.txt")["id"]
        worst = 0.0
        for n in range(1, args.rounds + 1):
            to_run, to_epoch, ok, done, epochs = one_round(api, stack, corpus_id)
            worst = max(worst, to_run)
            print(f"round {n}: attempt 2 running {to_run:.1f} s after the kill, its first "
                  f"epoch ended after {to_epoch:.1f} s; job {done['status']}, epochs "
                  f"{epochs}{'' if ok else '  PROBLEM'}", flush=True)
    print(f"longest time from SIGKILL to the job running again: {worst:.1f} s")


if __name__ == "__main__":
    main()
