"""`pip install .` as a user on a laptop runs it: a fresh virtual environment gets the client
and its declared dependencies, nothing of the server, and the `textgen` command works
against a live stack."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import TOKENS

REPO = Path(__file__).resolve().parents[1]
# The checkout as a user clones it: not our venv, git data, caches or build leftovers.
NOT_CLONED = shutil.ignore_patterns(".venv", ".git", "data", "build", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".ruff_cache")


def run(argv, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120,
                          **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site-packages, bin) of a fresh venv into which `pip install <checkout>` put the
    client. The venv has no pip of its own (ours installs into it: `pip --python`, 6 s
    sooner than ensurepip), and a copy of the checkout is built, since pip leaves build/
    and *.egg-info beside pyproject.toml."""
    root = tmp_path_factory.mktemp("client-install")
    shutil.copytree(REPO, root / "checkout", ignore=NOT_CLONED)
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    pip = run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
               "--disable-pip-version-check", root / "checkout"])
    assert pip.returncode == 0, pip.stderr
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                  check=True).stdout.strip()
    return Path(purelib), venv / "bin"


def user_env(tmp_path):
    """A shell's environment without ours: no path to this checkout, no stack's data dir."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TEXTGEN_URL", "TEXTGEN_TOKEN")}
    env["TEXTGEN_DATA_DIR"] = str(tmp_path / "data")
    return env


@pytest.mark.slow  # a venv and a pip install from the local index: 7 s, 15 s when loaded
def test_pip_install_gives_the_client_alone_which_talks_to_a_live_stack(installed, stack,
                                                                         tmp_path):
    site_packages, bin_dir = installed
    top_level = {p.name for p in site_packages.iterdir()}
    assert "client" in top_level and "requests" in top_level
    assert top_level & {"api", "shared", "worker", "tests", "bench"} == set()
    assert site_packages != Path(sysconfig.get_path("purelib"))  # not ours by mistake

    textgen = bin_dir / "textgen"
    env = user_env(tmp_path)
    shown = run([textgen, "--help"], env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "up" in shown.stdout and "whoami" in shown.stdout

    for argv in (["up"], ["token", "create", "carol"]):
        refused = run([textgen, *argv], env=env, cwd=tmp_path)
        assert refused.returncode == 1, refused.stdout
        assert "clone the textgen repository" in refused.stderr
        assert "Traceback" not in refused.stderr

    me = run([textgen, "--url", stack.url, "--token", TOKENS["alice"], "--json", "whoami"],
             env=env, cwd=tmp_path)
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout)["owner"] == "alice"


@pytest.mark.parametrize("missing, said", [
    ("shared.stack.commands", "clone the textgen repository and run `make up`"),
    ("redis", "needs the server's dependencies (no module named redis)")])
def test_a_server_command_without_the_servers_code_says_how_to_get_it(monkeypatch, capsys,
                                                                       missing, said):
    # None in sys.modules: Python's own way to make an import fail as not found.
    monkeypatch.delitem(sys.modules, "shared.stack.commands", raising=False)
    monkeypatch.setitem(sys.modules, missing, None)
    from client.cli import main

    assert main(["up"]) == 1
    said_so = capsys.readouterr().err
    assert said_so.startswith("textgen: `textgen up` ") and said in said_so
