"""The API's image (the Dockerfile's `api` target, which Compose's api and flower services
run) installs requirements-api.txt alone: that must cover every module the API can load,
and bring no TensorFlow. What a pin installs is read from this environment's package
metadata, so no network and no fresh virtual environment are needed."""

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
OURS = ("api", "shared", "worker", "client")


def imported(path):
    """The names `path` imports, anywhere in it (inside functions too); `from a import b`
    gives `a` and `a.b`, which may be a module."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def source_of(module):
    path = REPO.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # not one of our modules (a function or class imported by name)


def third_party_imports_of_the_api():
    """{top-level name: a file of ours importing it}, over api/ and every module of ours
    that it imports, followed import by import."""
    todo = [f"api.{path.stem}" for path in (REPO / "api").glob("*.py")]
    seen, found = set(), {}
    while todo:
        path = source_of(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        for name in imported(path):
            parts = name.split(".")
            if parts[0] in OURS:
                todo += [".".join(parts[:i]) for i in range(1, len(parts) + 1)]  # packages too
            elif parts[0] not in sys.stdlib_module_names:
                found.setdefault(parts[0], path.relative_to(REPO).as_posix())
    return found


def installed_by(requirements_file):
    """The distributions `pip install -r requirements_file` installs: its pins and what
    they require, extras included."""
    lines = [line.split("#")[0].strip() for line in requirements_file.read_text().splitlines()]
    todo = [Requirement(line) for line in lines if line]
    seen, names = set(), set()
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        for needed in map(Requirement, metadata.requires(requirement.name) or []):
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra})
                                            for extra in requirement.extras or {""}):
                todo.append(needed)
    return names


API_PACKAGES = installed_by(REPO / "requirements-api.txt")


def test_the_api_image_installs_every_package_the_api_imports():
    imports = third_party_imports_of_the_api()
    assert {"flask", "celery", "pydantic"} <= imports.keys(), imports  # the walk works
    providers = metadata.packages_distributions()
    missing = {name: where for name, where in imports.items()
               if not {canonicalize_name(d) for d in providers.get(name, [])} & API_PACKAGES}
    assert missing == {}, "imported by the API, not installed by requirements-api.txt"


def test_the_api_image_installs_no_tensorflow():
    assert "flask" in API_PACKAGES
    assert {name for name in API_PACKAGES
            if name.startswith(("tensorflow", "keras", "tf-keras"))} == set()


def test_requirements_txt_installs_the_api_s_packages_and_the_workers():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    assert "-r requirements-api.txt" in lines
    assert any(line.startswith("tensorflow-cpu==") for line in lines)  # the gpu image reads it


def test_the_api_and_flower_run_on_the_api_image_the_workers_on_theirs():
    stages = re.split(r"^FROM ", (REPO / "Dockerfile").read_text(), flags=re.MULTILINE)[1:]
    [api_stage] = [stage for stage in stages if stage.split("\n")[0].endswith(" AS api")]
    assert re.findall(r"pip install .*-r (\S+)", api_stage) == ["requirements-api.txt"]
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    targets = {name: service["build"]["target"] for name, service in services.items()
               if "build" in service}
    assert targets == {"api": "api", "flower": "api", "worker-train": "worker",
                       "worker-generate": "worker", "worker-train-gpu": "worker"}
