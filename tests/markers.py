"""What a test starts, as markers (pytest.ini), and the guard that keeps them true.
`make test-fast` leaves out every marked test, so a marker must never be forgotten: a test
is marked by the fixtures it uses (STARTED_BY_FIXTURE), or by hand where it starts processes
itself, and a test that starts a process its markers do not name fails.

Hooks for tests/conftest.py, which imports them.
"""

import os
import sys
import threading

import pytest

# Fixtures that start processes, and the marker each gives every test that uses it.
STARTED_BY_FIXTURE = {"stack": "stack",  # tests/conftest.py
                      "browser": "browser"}  # tests/test_dashboard.py, test_docs_page.py
# The markers that say "starts processes"; pytest.ini says what each covers.
PROCESS_MARKERS = ("stack", "browser", "netns", "subprocess")

# Audit events (docs.python.org, "Audit events table") that start a child process;
# os.spawn* and pty.fork fork first, so "os.fork" and "os.forkpty" cover them.
_SPAWN_EVENTS = {"subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn"}
# The one process an unmarked test may start: moto's S3 server (the `s3_server` fixture),
# once a session, in about half a second; the store's S3 backend is then tested as often
# as its file one.
_UNMARKED_MAY_START = "moto.server"


class UnmarkedProcessError(RuntimeError):
    """Raised when a test starts a process that its markers do not declare."""


# A test's rough cost by what it starts (its markers), to order files heaviest first.
_COST = {"slow": 10, "stack": 3, "netns": 3, "browser": 3, "subprocess": 2, "keras": 2}
_UNMARKED_COST = 0.05


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, marker in STARTED_BY_FIXTURE.items():
            if fixture in item.fixturenames:
                item.add_marker(marker)
    _heaviest_files_first(items)


def _heaviest_files_first(items):
    """Order the test files by their rough cost, heaviest first, each file's tests in their
    own order. pytest-xdist (--dist loadfile) hands files out in this order, so the long
    ones start at once and the short ones fill the end, instead of one process running a
    long file alone while the other has finished (LPT scheduling)."""
    cost = {}
    for item in items:
        names = {marker.name for marker in item.iter_markers()}
        cost[item.path] = cost.get(item.path, 0) + max(
            (_COST[name] for name in names if name in _COST), default=_UNMARKED_COST)
    items.sort(key=lambda item: -cost[item.path])  # stable: a file's own order is kept


def markers_required(argv):
    """The markers a test must carry to start `argv`, beyond any one of PROCESS_MARKERS:
    `stack` for the server's own processes, `browser`, `netns`."""
    words = [os.path.basename(arg) for arg in argv]
    required = set()
    if "celery" in words or "gunicorn" in words:  # an API, a worker, Flower
        required.add("stack")
    for command, verb in zip(words, words[1:]):  # `textgen up`: a whole stack, as children
        if command in ("client", "textgen") and verb in ("up", "demo"):
            required.add("stack")
    if any(word.startswith("chromedriver") for word in words):
        required.add("browser")
    if words[:1] == ["ip"]:
        required.add("netns")
    return required


def unmarked(markers, argv):
    """Why a test marked `markers` may not start `argv`, or None when it may."""
    if any(_UNMARKED_MAY_START in arg for arg in argv):
        return None
    missing = markers_required(argv) - set(markers)
    if not missing and set(markers) & set(PROCESS_MARKERS):
        return None
    needed = " and ".join(sorted(missing)) or f"one of {', '.join(PROCESS_MARKERS)}"
    return (f"starts {' '.join(argv)[:200]!r} but is not marked {needed}: add"
            " @pytest.mark.<marker> (pytest.ini says which), so that `make test-fast` leaves"
            " it out")


def _argv_of(event, args):
    if event == "subprocess.Popen":  # (executable, args, cwd, env)
        argv = args[1]
    elif event == "os.posix_spawn":  # (path, argv, env)
        argv = args[1]
    elif event == "os.system":  # (command,)
        argv = args[0]
    else:
        return [event]  # a bare fork: what the child runs is not known here
    if isinstance(argv, (str, bytes)):  # a shell command line
        return os.fsdecode(argv).split()
    if isinstance(argv, os.PathLike):
        return [os.fsdecode(argv)]
    return [os.fsdecode(arg) for arg in argv]


_running = None  # the item whose setup, call or teardown is under way in this process
UNMARKED = pytest.StashKey[str]()  # on an item: why it failed the guard


def _guard(event, args):
    item = _running
    # Only the main thread's: a stack's supervisor thread restarting a worker while a later
    # test runs acts for the test that started the stack.
    if (event not in _SPAWN_EVENTS or item is None
            or threading.current_thread() is not threading.main_thread()):
        return
    why = unmarked([mark.name for mark in item.iter_markers()], _argv_of(event, args))
    if why:
        item.stash[UNMARKED] = why  # fails the test below even if the code under test
        raise UnmarkedProcessError(f"{item.nodeid} {why}")  # catches this


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item):
    global _running
    _running = item
    try:
        return (yield)
    finally:
        _running = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.passed and UNMARKED in item.stash:
        report.outcome, report.longrepr = "failed", f"{item.nodeid} {item.stash[UNMARKED]}"
    return report


sys.addaudithook(_guard)  # once: a module is imported once per process
