"""The `textgen` command line, run as a user runs it (a subprocess, output piped) against
the real stack: TEXTGEN_URL and TEXTGEN_TOKEN point it there."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from client.stack import free_port
from tests.conftest import TOKENS
from tests.test_end_to_end import TEXT

REPO = Path(__file__).resolve().parents[1]
# TINY_DEFAULT (tests/test_end_to_end.py) as options: seconds per job, not minutes.
TINY = ["--units", "32", "--layers", "1", "--seq-length", "32",
        "--set", "model.embedding_dim=16", "--set", "training.batch_size=16",
        "--set", "training.seed=3"]


@pytest.fixture
def env(stack):
    return {**os.environ, "TEXTGEN_URL": stack.url, "TEXTGEN_TOKEN": TOKENS["alice"]}


@pytest.fixture
def textgen(env):
    def run(*args, ok=True, timeout=120):
        done = subprocess.run([sys.executable, "-m", "client", *map(str, args)], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=timeout)
        if ok:
            assert done.returncode == 0, done.stderr
        return done
    return run


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "night.txt"
    path.write_text(TEXT + "the command line\n")
    return path


def test_train_follow_then_generate_list_download_plot_delete(textgen, book, tmp_path):
    trained = textgen("train", book, "--epochs", 2, *TINY, "--follow")
    out = trained.stdout
    assert "\x1b" not in out and "\r" not in out  # piped: no bars, no colour
    lines = out.splitlines()
    assert len(lines) == len(set(lines)), out  # every line once
    job_id = lines[0]
    assert re.fullmatch(r"job_\w+", job_id)
    assert lines[1] == f"{job_id} queued" and lines[2].startswith(f"{job_id} running on ")
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"], out
    for line in epochs:
        assert re.search(r"loss \d\.\d{3}  val \d\.\d{3}  \d\.\d{3} bits/char  [\d,]+ chars/s"
                         r"  [\d.]+ s  sample \"", line)
    model_id = re.fullmatch(rf"{job_id} succeeded: model (mdl_\w+) \(best epoch \d, "
                            r"stopped: epochs_done\)", lines[-1]).group(1)
    assert "uploaded as corpus" in trained.stderr

    # The same file again: its corpus, not another upload.
    corpus_id = json.loads(textgen("status", job_id, "--json").stdout)["corpus_id"]
    again = textgen("upload", book)
    assert again.stdout.strip() == corpus_id and "reusing it" in again.stderr

    generated = textgen("generate", model_id, "--prompt", "It was", "--length", 20,
                        "--temperature", 0.5, 1.0, "--seed", 7).stdout
    assert re.findall(r"--- sample \d \(temperature (\S+)\) ---", generated) == ["0.5", "1"]
    texts = re.split(r"--- sample \d \(temperature \S+\) ---\n", generated)[1:]
    assert len(texts) == 2 and all(t.startswith("It was") for t in texts)  # samples may
    # hold line breaks: each is the prompt and 20 characters, then the line's end
    assert all(len(t) == len("It was") + 20 + 1 for t in texts), texts
    job = json.loads(textgen("generate", model_id, "--length", 5, "--json").stdout)
    assert job["status"] == "succeeded" and len(job["samples"]) == 1
    assert job["result"]["sample_count"] == 1
    assert json.loads(textgen("samples", job["id"], "--json").stdout) == {
        "samples": job["samples"]}

    listed = {kind: [r["id"] for r in json.loads(textgen(kind, "--json").stdout)]
              for kind in ("jobs", "models", "corpora")}
    assert job_id in listed["jobs"] and model_id in listed["models"]
    assert corpus_id in listed["corpora"]
    assert job_id in textgen("jobs", "--type", "train").stdout
    assert job_id not in textgen("jobs", "--type", "generate").stdout
    events = [json.loads(line) for line in textgen("events", job_id, "--json").stdout
              .splitlines()]
    assert [e["type"] for e in events].count("epoch_end") == 2

    textgen("download", model_id, "-o", tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json", "metrics.json", "model.keras", "vocab.json"]
    textgen("plot", job_id, "-o", tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    assert textgen("delete", "model", model_id).stdout.strip() == f"deleted model {model_id}"
    assert model_id not in textgen("models").stdout
    gone = textgen("delete", "model", model_id, ok=False)
    assert gone.returncode == 1
    assert gone.stderr == f"textgen: Not found: no model with id '{model_id}'\n"
    textgen("delete", "corpus", corpus_id)


def test_errors_are_one_line_and_a_failing_exit(textgen, tmp_path):
    cases = {
        ("status", "job_nope"): "textgen: Not found: no job with id 'job_nope'",
        ("train", "cor_nope"): "textgen: Not found: no corpus with id 'cor_nope' "
                               "(field corpus_id)",
        ("train", tmp_path / "missing.txt"): f"textgen: {tmp_path / 'missing.txt'}: no such "
                                             "file, and not a corpus id (cor_...)",
        ("generate", "mdl_nope", "--length", 0, "--json"):
            "textgen: Invalid input: length: Input should be greater than or equal to 1",
        ("jobs", "--url", f"http://127.0.0.1:{free_port()}"):
            "textgen: cannot reach textgen at http://127.0.0.1:",
    }
    for args, line in cases.items():
        done = textgen(*args, ok=False)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith(line) and done.stderr.count("\n") == 1, done.stderr


def _read_until(process, pattern, timeout_s=120):
    """Lines of the process's stdout up to the first that matches `pattern`."""
    deadline = time.monotonic() + timeout_s
    lines = []
    while not lines or not re.search(pattern, lines[-1]):
        assert time.monotonic() < deadline and process.poll() is None, lines
        lines.append(process.stdout.readline())
    return lines


def test_ctrl_c_asks_whether_to_cancel_or_only_stop_following(textgen, env, book):
    def follow(*args):
        # SIGINT as a terminal would deliver it: a shell's background job (`.ci/run &`)
        # starts with SIGINT ignored, which its children, Python included, keep.
        return subprocess.Popen([sys.executable, "-m", "client", *map(str, args)], cwd=REPO,
                                env=env, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def interrupt(process, answer):
        process.stdin.write(answer + "\n")  # read by the prompt once Ctrl-C has come
        process.stdin.flush()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        return err

    training = follow("train", book, "--epochs", 10_000, "--max-seconds", 120, *TINY,
                      "--follow")
    job_id = _read_until(training, r"^epoch 1/")[0].strip()
    err = interrupt(training, "n")
    assert f"cancel job {job_id}? [y/N]" in err and "stopped following" in err
    assert json.loads(textgen("status", job_id, "--json").stdout)["status"] == "running"

    watching = follow("status", job_id, "--follow")
    _read_until(watching, r"^epoch ")
    err = interrupt(watching, "y")
    assert f"job {job_id} cancelled" in err
    assert json.loads(textgen("status", job_id, "--json").stdout)["status"] == "cancelled"


def test_the_console_script_is_the_cli():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"textgen": "client.cli:main"}
    for package in project["tool"]["setuptools"]["packages"]:
        assert (REPO / package / "__init__.py").is_file()
