"""The markers `make test-fast` selects by (tests/markers.py), and the guard that fails a
test starting a process its markers do not name."""

import re
import subprocess
from pathlib import Path

import iniconfig  # pytest's own ini reader
import pytest

from tests.markers import UNMARKED, UnmarkedProcessError, markers_required, unmarked

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv, required", [
    (["/venv/bin/python", "-m", "celery", "-A", "worker.main", "worker"], {"stack"}),
    (["python", "-m", "gunicorn", "api.wsgi:app"], {"stack"}),
    (["python", "-m", "client", "up"], {"stack"}),
    (["/usr/bin/chromedriver", "--port=9515"], {"browser"}),
    (["ip", "netns", "exec", "host-a", "python", "-m", "celery"], {"netns", "stack"}),
    (["redis-server", "--port", "6390"], set()),
    (["python", "-m", "client", "token", "create", "carol"], set()),
])
def test_the_servers_processes_a_browser_and_namespaces_need_their_own_marker(argv, required):
    assert markers_required(argv) == required


def test_any_process_needs_a_process_marker_but_moto_s_session_server():
    assert unmarked(["subprocess"], ["redis-server"]) is None
    assert unmarked(["stack"], ["python", "-m", "client", "health"]) is None
    assert unmarked([], ["python", "-m", "moto.server", "-p", "5000"]) is None
    assert "not marked one of stack" in unmarked(["slow"], ["true"])
    assert "not marked stack" in unmarked(["subprocess"], ["python", "-m", "celery"])


def test_an_unmarked_test_that_starts_a_process_fails(request):
    with pytest.raises(UnmarkedProcessError, match="not marked one of stack"):
        subprocess.run(["true"])
    del request.node.stash[UNMARKED]  # expected here; elsewhere it fails the test


def test_make_test_fast_leaves_out_every_marker_pytest_ini_declares():
    markers = iniconfig.IniConfig(REPO / "pytest.ini")["pytest"]["markers"]
    declared = {line.split(":")[0] for line in markers.strip().splitlines()}
    recipe = re.search(r"^test-fast:.*\n\t.* -m \"([^\"]+)\"", (REPO / "Makefile").read_text(),
                       re.MULTILINE)
    assert set(re.findall(r"not (\w+)", recipe.group(1))) == declared
