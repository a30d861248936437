"""The deployment files agree with the settings: docker-compose.yml, .env.example, Dockerfile.

Pure file checks (no Docker, no database): the variables config/settings.py reads
are found by parsing it, so a new setting without its .env.example line, or a
compose variable that nothing reads, fails here.
"""

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ["web", "worker"]
ALL_SERVICES = ["db", "redis", "web", "worker"]


@cache
def settings_variables() -> frozenset[str]:
    """Names config/settings.py reads: `env("X", ...)` and `env.<cast>("X", ...)`, e.g. `env.db_url("DATABASE_URL")`."""
    tree = ast.parse((ROOT / "config" / "settings.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        reads_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
        )
        if not reads_env:
            continue
        first = node.args[0] if node.args else next((kw.value for kw in node.keywords if kw.arg == "var"), None)
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return frozenset(names)


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def service_environment(service: dict) -> set[str]:
    """Variable names a compose service sets, from either the mapping or the `KEY=value` list form."""
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return set(environment)
    return {item.split("=", 1)[0] for item in environment}


def env_example_names() -> list[str]:
    """Variables .env.example lists: `NAME=value` lines, and `# NAME=` lines for computed defaults."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return re.findall(r"^#?[ \t]*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def test_settings_variables_are_found_in_settings_py():
    # Guards the helper itself: plain env(), a cast method and env.db_url.
    assert {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "Q_WORKERS"} <= settings_variables()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_app_service_sets_only_variables_the_settings_read(name):
    environment = service_environment(compose()["services"][name])

    assert environment, f"{name} sets no environment"
    assert environment - settings_variables() == set()


def test_env_example_lists_exactly_the_variables_the_settings_read():
    assert set(env_example_names()) == settings_variables()


def test_env_example_lists_each_variable_once():
    names = env_example_names()

    assert sorted(name for name in set(names) if names.count(name) > 1) == []


def test_compose_has_the_four_services():
    assert set(ALL_SERVICES) <= set(compose()["services"])


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_compose_service_has_a_healthcheck(name):
    healthcheck = compose()["services"][name].get("healthcheck") or {}

    assert healthcheck.get("test"), f"{name} has no healthcheck test"
    assert not healthcheck.get("disable")
    assert healthcheck["test"] not in (["NONE"], "NONE")


def test_compose_keeps_postgres_data_in_a_named_volume():
    spec = compose()
    named_volumes = set(spec.get("volumes") or {})
    mounts = []
    for volume in spec["services"]["db"].get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            mounts.append((source, rest.split(":", 1)[0]))
        else:
            mounts.append((volume.get("source"), volume.get("target")))

    assert any(source in named_volumes and target.startswith("/var/lib/postgresql") for source, target in mounts), (
        mounts
    )


def test_dockerfile_builds_on_python_311_slim():
    bases = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "FROM"]
    # The last FROM is the image that ships; skip flags such as --platform=.
    image = next(word for word in bases[-1].split() if not word.startswith("--"))

    assert re.fullmatch(r"python:3\.11-slim(-[a-z0-9]+)?(@sha256:[0-9a-f]+)?", image), image


def test_dockerfile_runs_as_a_non_root_user():
    users = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "USER"]

    assert users, "no USER instruction: the container would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_collects_static_files_at_build_time():
    runs = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN"]

    assert any("collectstatic" in run and "--noinput" in run for run in runs)


def test_dockerfile_does_not_bake_a_secret_key_into_the_image():
    declared = [arguments for keyword, arguments in dockerfile_instructions() if keyword in {"ENV", "ARG"}]

    assert not [arguments for arguments in declared if re.search(r"\bSECRET_KEY\b", arguments)]
