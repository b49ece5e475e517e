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

from shared.stack.runner import free_port
from tests.conftest import TEST_REDIS_URL, TOKENS
from tests.faults import reap_when_expired, stack_jobs, unsent_training_job
from tests.terminal import Terminal
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
    # The model it trains, and why that one.
    assert ("model: 1x32 LSTM, dropout 0, learning rate 0.01, windows of 32 (as you asked)"
            in trained.stderr)
    # Ended: where it stopped, no running step, share or ETA.
    status = textgen("status", job_id).stdout
    assert "epochs run 2/2  loss " in status and "step" not in status and "eta" not in status

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
    # Every option the API has.
    # `--stop '\n\n'` from a shell is backslash, n: the command reads it as printf would.
    options = ("--top-k", 3, "--top-p", 0.9, "--stop", r"z\n\tz", "--num-samples", 2,
               "--seed", 5)
    job = json.loads(textgen("generate", model_id, "--length", 30, *options, "--json").stdout)
    assert {k: job["spec"][k] for k in ("top_k", "top_p", "stop", "num_samples", "seed")} \
        == {"top_k": 3, "top_p": 0.9, "stop": "z\n\tz", "num_samples": 2, "seed": 5}
    unseen = textgen("generate", model_id, "--prompt", "Zé€", ok=False)
    assert unseen.stderr.count("\n") == 1 and "'€'" in unseen.stderr
    assert "remove them from the prompt, or train a model on a text that has them" \
        in unseen.stderr

    # Lists under a header row, with units.
    jobs_list, models_list = textgen("jobs").stdout, textgen("models").stdout
    assert jobs_list.split("\n")[0].split() == ["JOB", "TYPE", "STATUS", "CREATED", "(UTC)",
                                                "LOSS", "PROGRESS", "OR", "RESULT"]
    [job_row] = [line for line in jobs_list.splitlines() if job_id in line]
    assert re.search(rf"  \d\.\d{{3}} bits/char  {model_id}$", job_row), jobs_list
    assert models_list.split("\n")[0].split()[:2] == ["MODEL", "CREATED"]
    [model_row] = [line for line in models_list.splitlines() if model_id in line]
    assert re.search(r"\d\.\d{3} bits/char$", model_row), models_list
    listed = {kind: [r["id"] for r in json.loads(textgen(kind, "--json").stdout)]
              for kind in ("jobs", "models", "corpora")}
    assert job_id in listed["jobs"] and model_id in listed["models"]
    assert corpus_id in listed["corpora"]
    assert job_id in textgen("jobs", "--type", "train").stdout
    assert job_id not in textgen("jobs", "--type", "generate").stdout
    events = [json.loads(line) for line in textgen("events", job_id, "--json").stdout
              .splitlines()]
    assert [e["type"] for e in events].count("epoch_end") == 2
    assert re.search(r"Z  progress   epoch [12]/2  step \d+/\d+  loss \d\.\d{3}  eta ",
                     textgen("events", job_id).stdout)

    textgen("download", model_id, "-o", tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json", "metrics.json", "model.keras", "vocab.json"]
    textgen("plot", job_id, "-o", tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # Every command that writes a file: a bad path is one line that says what to do.
    missing = tmp_path / "missing" / "dir"
    for args, line in {
            ("plot", job_id, "-o", missing / "loss.png"):
                f"{missing / 'loss.png'}: no directory {missing} to write the PNG file in; "
                f"create it (mkdir -p {missing}) or give another path",
            ("plot", job["id"]): f"job {job['id']} is a generate job: only training jobs "
                                 "have losses to plot",
            ("plot", job_id, "-o", tmp_path): f"{tmp_path} is a directory; give the path "
                                              "of the PNG file",
            ("download", model_id, "-o", tmp_path / "loss.png"):
                f"{tmp_path / 'loss.png'} is a file; give a directory"}.items():
        done = textgen(*args, ok=False)
        assert done.returncode == 1 and done.stderr.startswith(f"textgen: {line}"), \
            done.stderr
        assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert not missing.parent.exists()

    # The kind is in the id; piped, nothing asks first.
    assert textgen("delete", job["id"]).stdout.strip() == f"deleted job {job['id']}"
    assert textgen("delete", "model", model_id).stdout.strip() == f"deleted model {model_id}"
    assert model_id not in textgen("models").stdout
    gone = textgen("delete", "model", model_id, ok=False)
    assert gone.returncode == 1
    assert gone.stderr == f"textgen: Not found: no model with id '{model_id}'\n"
    textgen("delete", "corpus", corpus_id)


def test_train_says_which_model_a_budget_chose_and_why(textgen, book):
    done = textgen("train", book, "--max-seconds", 5)
    job_id = done.stdout.strip()
    textgen("cancel", job_id)  # what it trains is all this test is about
    again = textgen("cancel", job_id, ok=False)
    assert again.stderr == f"textgen: Conflict: job {job_id} has already ended: cancelled\n"
    chars = f"{len(book.read_text()):,}"
    # Many passes over a small text in 5 s: the server's rule adds dropout.
    assert done.stderr.splitlines()[-1] == (
        "model: 2x128 LSTM, dropout 0.2, learning rate 0.01, windows of 64 (sized by the "
        f"server for a 5 s budget on {chars} characters; --units or --layers choose it "
        "yourself)")
    spec = json.loads(textgen("status", job_id, "--json").stdout)["spec"]
    assert (spec["model"]["layers"], spec["model"]["units"], spec["model"]["dropout"]) == (
        2, 128, 0.2)


def test_generate_without_a_prompt_opens_with_no_blank_line(textgen, tmp_path):
    # Paragraphs apart by blank lines: after a line break, where a sample without a prompt
    # starts, the likeliest character is another line break.
    path = tmp_path / "paragraphs.txt"
    path.write_text("It was a dreary night.\n\n\n\n" * 200)
    trained = textgen("train", path, "--epochs", 2, *TINY, "--follow").stdout
    model_id = re.search(r"succeeded: model (mdl_\w+)", trained).group(1)
    greedy = ("generate", model_id, "--length", 40, "--temperature", 0)
    job = json.loads(textgen(*greedy, "--json").stdout)
    assert job["samples"][0]["text"].startswith("\n")  # as the API has it
    shown = textgen(*greedy).stdout
    assert shown.strip() and not shown.startswith("\n"), repr(shown)


def test_a_word_model_is_followed_in_bits_per_token_and_per_character(textgen, book):
    out = textgen("train", book, "--epochs", 1, *TINY, "--set", 'preprocessing.level="word"',
                  "--follow").stdout
    [line] = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert re.search(r"\d\.\d{3} bits/token  \d\.\d{3} bits/char  [\d,]+ tokens/s", line), out


def test_errors_are_one_line_and_a_failing_exit(textgen, tmp_path):
    cases = {
        ("status", "job_nope"): "textgen: Not found: no job with id 'job_nope'",
        ("train", "cor_nope"): "textgen: Not found: no corpus with id 'cor_nope' "
                               "(field corpus_id)",
        ("train", tmp_path / "missing.txt"): f"textgen: {tmp_path / 'missing.txt'}: no such "
                                             "file, and not a corpus id (cor_...)",
        ("generate", "mdl_nope", "--length", 0, "--json"):
            "textgen: Invalid input: length: Input should be greater than or equal to 1",
        ("upload", tmp_path / "missing.txt"): f"textgen: {tmp_path / 'missing.txt'}: no such "
                                               "file; give the path of a text file",
        ("upload", tmp_path): f"textgen: {tmp_path}: a directory; give the path of a text file",
        ("jobs", "--url", f"http://127.0.0.1:{free_port()}"):
            "textgen: cannot reach textgen at http://127.0.0.1:",
    }
    for args, line in cases.items():
        done = textgen(*args, ok=False)
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith(line) and done.stderr.count("\n") == 1, done.stderr


def test_presets_and_whoami_print_tables_and_the_apis_json(textgen):
    lines = textgen("presets").stdout.splitlines()
    assert lines[0].split() == ["PRESET", "DESCRIPTION"]
    assert [line.split()[0] for line in lines[1:]] == ["default", "seed"]
    presets = json.loads(textgen("presets", "--json").stdout)
    assert [p["spec"]["model"]["units"] for p in presets] == [128, 256]

    me = json.loads(textgen("whoami", "--json").stdout)
    lines = textgen("whoami").stdout.splitlines()
    assert lines[0] == "owner: alice" and lines[1].split() == ["QUOTA", "LIMIT", "IN", "USE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    assert list(rows) == list(me["quotas"])  # a row for each quota, in the API's order
    assert rows["max_queued_jobs"][:2] == [f"{me['quotas']['max_queued_jobs']:,}",
                                           str(me["usage"]["jobs_queued"])]
    assert rows["max_storage_mb"][:2] == [f"{me['quotas']['max_storage_mb']:,g}",
                                          f"{me['usage']['storage_bytes'] / 2**20:,.1f}"]
    assert rows["max_model_mb"][1] == "-"  # a limit of one job: nothing in use
    usage = me["usage"]
    assert lines[-1] == (f"models: {usage['models']}, corpora: {usage['corpora']}, "
                         f"sweeps: {usage['sweeps']} ({usage['sweeps_running']} running)")


def test_unauthorized_says_where_the_token_was_looked_for(stack, tmp_path):
    """Run from outside the checkout, with no token anywhere, then with a wrong one."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TEXTGEN_TOKEN", "TEXTGEN_DATA_DIR")}
    env["TEXTGEN_URL"] = stack.url

    def jobs(*args):
        done = subprocess.run([sys.executable, "-m", "client", "jobs", *args], cwd=tmp_path,
                              env={**env, "PYTHONPATH": str(REPO)}, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1
        return done.stderr

    assert jobs() == (
        "textgen: Unauthorized: send your API token as 'Authorization: Bearer <token>'; no "
        f"token found in --token, TEXTGEN_TOKEN or {tmp_path / 'data' / 'token'} (the local "
        "stack's; TEXTGEN_DATA_DIR sets its directory): set TEXTGEN_TOKEN (export "
        "TEXTGEN_TOKEN=$(cat DATA_DIR/token) for a local stack's) or pass --token\n")
    assert jobs("--token", "nope").startswith(
        "textgen: Unauthorized: the token is not valid; the token from --token was refused: "
        "set TEXTGEN_TOKEN")


def test_delete_by_id_asks_first_on_a_terminal(textgen, env, book):
    corpus_id = textgen("upload", book).stdout.strip()

    def delete(*args, answer=None):
        with Terminal([sys.executable, "-m", "client", "delete", *args], env=env,
                      cwd=REPO) as terminal:
            if answer is not None:
                terminal.read_until(rf"delete corpus {corpus_id} \(its text\)\? \[y/N\] $")
                terminal.type(answer + "\n")
            return terminal.wait(), terminal.output

    code, out = delete(corpus_id, answer="n")
    assert code == 1 and out.endswith(f"corpus {corpus_id} not deleted\n"), out
    assert corpus_id in textgen("corpora").stdout
    code, out = delete(corpus_id, answer="y")
    assert code == 0 and out.endswith(f"deleted corpus {corpus_id}\n"), out
    assert corpus_id not in textgen("corpora").stdout
    corpus_id = textgen("upload", book).stdout.strip()
    code, out = delete(corpus_id, "--yes")  # no question
    assert code == 0 and out == f"deleted corpus {corpus_id}\n", out


def test_a_job_not_under_way_yet_says_so_not_epoch_0_of_none(textgen, stack):
    """The job store's own steps play a worker that takes the job and dies at once."""
    jobs = stack_jobs(stack, TEST_REDIS_URL)
    job_id = unsent_training_job(jobs)

    def shown():
        [row] = [line for line in textgen("jobs").stdout.splitlines() if job_id in line]
        return row.split("  ")[-1], textgen("status", job_id).stdout.splitlines()[2]

    try:
        assert shown() == ("waiting", "waiting")
        jobs.start(job_id, "w1", lease_ms=60_000)
        assert shown() == ("starting", "starting")
        jobs.renew_lease(job_id, 1, lease_ms=1)  # its last beat: it dies
        reap_when_expired(jobs, job_id)
        assert shown() == ("waiting for attempt 2", "waiting for attempt 2")
    finally:
        jobs.cancel(job_id)
    assert textgen("status", job_id).stdout.splitlines()[2] == "no epoch run"


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
        directory = REPO / package.replace(".", "/")
        # The dashboard's files are listed as packages of data only (no __init__.py).
        assert (directory / "__init__.py").is_file() or package.startswith("api.static")
        assert directory.is_dir()
