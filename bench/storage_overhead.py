"""What the S3 artifact store costs against a local directory, for the demo's model.

The demo's job (default preset on frankenstein-2.txt, up to 40 epochs in a 150 s budget),
run through the artifact store as a worker runs it (worker/runs.py): store the corpus,
read it back, train with the job's checkpoint store, publish the model, fetch it on a
"generation host" (an empty scratch cache), load it and sample 2 x 400 characters. Once
on a local directory, once on S3: moto's server on loopback, so the figures are the
protocol's and the client's cost, not a network's.

Both runs train for the same wall-clock budget, so training time is equal by design: what
differs is the seconds spent in the checkpoint store (each epoch's model.save to scratch,
upload, state.json, pruning), which come out of that budget, and the rest.

    .venv/bin/python -m bench.storage_overhead          # MAX_SECONDS=20 for a quick look
    ORDER=s3,local .venv/bin/python -m bench.storage_overhead   # the other order

Needs requirements-test.txt (moto) besides the runtime's.
"""

import dataclasses
import os
import secrets
import tempfile
import time
from pathlib import Path

from bench.common import corpus, spec_from
from shared.stores.artifacts import open_artifact_store
from shared.stores.checkpoint_store import CheckpointStore
from shared.runtime.settings import Settings
from worker.model_files import load_model, save_model
from worker.sampling import generate
from worker.training import TrainHooks, train


class TimedCheckpointStore(CheckpointStore):
    """The job's real checkpoint store, adding up the seconds spent in it."""

    seconds = 0.0

    def _timed(self, method, *args):
        started = time.monotonic()
        try:
            return method(*args)
        finally:
            self.seconds += time.monotonic() - started

    def save_file(self, name, write):
        return self._timed(super().save_file, name, write)

    def write_state(self, state):
        return self._timed(super().write_state, state)

    def names(self):
        return self._timed(super().names)

    def delete(self, name):
        return self._timed(super().delete, name)


def timed(figures, name, call):
    started = time.monotonic()
    result = call()
    figures[name] = time.monotonic() - started
    return result


def run(settings, spec, text, scratch):
    figures = {}
    store = open_artifact_store(settings)
    started = time.monotonic()
    sha = "0" * 64  # the bench's own key; the API would use text_sha256(text)
    timed(figures, "corpus put", lambda: store.put_corpus(sha, text))
    timed(figures, "corpus read", lambda: store.read_corpus(sha))
    plain = store.checkpoints("job_bench", 1)
    checkpoints = TimedCheckpointStore(plain.objects, plain.prefix, 1, plain.cache)
    trained = timed(figures, "train", lambda: train(spec, text, checkpoints, TrainHooks()))
    figures["checkpoints"] = checkpoints.seconds

    def publish():
        with store.scratch_dir() as local_dir:
            save_model(local_dir, trained, spec, {"job_id": "job_bench"})
            store.publish_model("mdl_bench", 1, local_dir)
    timed(figures, "publish", publish)
    # A generation host: the same store, an empty scratch cache of its own.
    other = open_artifact_store(dataclasses.replace(
        settings, cache_dir=scratch / "generation-host"))
    local = timed(figures, "fetch", lambda: other.local_model_dir("mdl_bench", 1))
    loaded = timed(figures, "load", lambda: load_model(local))
    timed(figures, "sample", lambda: generate(loaded, length=400, temperature=0.8,
                                              num_samples=2, seed=1))
    figures["total"] = time.monotonic() - started
    figures["epochs"] = len(trained.history)
    store.delete_job_files("job_bench")
    store.delete_model("mdl_bench")
    store.delete_corpus(sha)
    return figures


def cpu_seconds(pid):
    """CPU time a process has used: the S3 server shares this machine's cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main():
    from shared.stack.runner import free_port
    from tests.s3_server import MotoServer, fake_aws_environment

    text = corpus("frankenstein-2.txt")
    spec = spec_from("default", training={
        "epochs": 40, "max_seconds": float(os.environ.get("MAX_SECONDS", "150"))})
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        fake_aws_environment()
        server = MotoServer(free_port(), scratch / "moto.log")
        try:
            server.create_bucket("bench")
            base = Settings(redis_url="redis://unused", data_dir=scratch / "local")
            backends = {
                "local": base,
                "s3": dataclasses.replace(base, cache_dir=scratch / "s3-cache",
                                          artifacts_url=f"s3://bench/{secrets.token_hex(4)}",
                                          s3_endpoint_url=server.endpoint_url),
            }
            # Which runs first matters on a busy machine: ORDER lets a second run swap them.
            order = os.environ.get("ORDER", "local,s3").split(",")
            results = {}
            for name in order:
                cpu_before = cpu_seconds(server.process.pid)
                results[name] = run(backends[name], spec, text, scratch)
                results[name]["s3 server cpu"] = cpu_seconds(server.process.pid) - cpu_before
        finally:
            server.stop()

    keys = ["corpus put", "corpus read", "train", "checkpoints", "publish", "fetch", "load",
            "sample", "total", "s3 server cpu"]
    print(f"{'seconds':<14}{'local':>10}{'s3':>10}")
    for key in keys:
        print(f"{key:<14}{results['local'][key]:>10.3f}{results['s3'][key]:>10.3f}")
    print(f"{'epochs':<14}{results['local']['epochs']:>10}{results['s3']['epochs']:>10}")
    for name, figures in results.items():
        print(f"{name}: {figures['checkpoints'] / figures['epochs']:.3f} s of checkpointing "
              f"per epoch")


if __name__ == "__main__":
    main()
