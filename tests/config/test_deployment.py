"""The deployment files agree with the settings and with each other: docker-compose.yml,
.env.example, Dockerfile, gunicorn.conf.py and deploy/nginx.conf.

Pure file checks (no Docker, no database, no nginx): the variables config/settings.py
reads are found by parsing it, so a new setting without its .env.example line, or a
compose variable that nothing reads, fails here. The nginx configuration is parsed
too; bench/drill_slowloris.py runs it.
"""

import ast
import re
import runpy
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.urls import reverse
from gunicorn.config import KNOWN_SETTINGS

from catalog.forms import CSV_MAX_SIZE

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ["web", "worker"]
ALL_SERVICES = ["db", "redis", "web", "proxy", "worker"]


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


def test_compose_has_the_five_services():
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


# --- the proxy and gunicorn ---------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list["Directive"] | None = None


def parse_nginx(text: str) -> list[Directive]:
    """Directives and their blocks; enough for deploy/nginx.conf (no `#` inside quotes there)."""
    text = re.sub(r"#[^\n]*", "", text)
    tokens = re.findall(r'"[^"]*"|[{};]|[^\s{};"]+', text)
    root: list[Directive] = []
    stack, words = [root], []
    for token in tokens:
        if token == ";":
            stack[-1].append(Directive(words[0], words[1:]))
            words = []
        elif token == "{":
            directive = Directive(words[0], words[1:], [])
            stack[-1].append(directive)
            stack.append(directive.block)
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


@cache
def nginx_site() -> tuple[Directive, ...]:
    return tuple(parse_nginx((ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")))


def only(directives, name: str) -> Directive:
    found = [d for d in directives if d.name == name]
    assert len(found) == 1, f"{len(found)} {name} directives"
    return found[0]


def server() -> list[Directive]:
    return only(nginx_site(), "server").block


def locations() -> dict[str, list[Directive]]:
    found = {}
    for directive in server():
        if directive.name == "location":
            # Prefix locations only: the longest-prefix lookup below knows no regular expressions.
            assert len(directive.args) == 1, directive.args
            found[directive.args[0]] = directive.block
    return found


def location_for(path: str) -> list[Directive]:
    """The location nginx picks for a path: the longest matching prefix."""
    prefixes = [prefix for prefix in locations() if path.startswith(prefix)]
    assert prefixes, f"no location for {path}"
    return locations()[max(prefixes, key=len)]


def effective(path: str, name: str) -> list[list[str]]:
    """Arguments of each `name` directive in force for a request to path: the location's own, else inherited."""
    for level in (location_for(path), server(), list(nginx_site())):
        found = [d.args for d in level if d.name == name]
        if found:
            return found
    return []


def nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def nginx_seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[unit]


@pytest.fixture
def gunicorn_conf(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def webhook_paths() -> list[str]:
    return [
        reverse("bitrix24:imbot-events"),
        reverse("telegram:webhook"),
        reverse("telegram:account-webhook", kwargs={"key": "shop"}),
    ]


def test_nginx_parser_reads_blocks_and_arguments():
    # Guards the helper the tests below stand on.
    parsed = parse_nginx('a 1; b { c "x y"; d { e; } } # f;\ng 2;')

    assert [d.name for d in parsed] == ["a", "b", "g"]
    assert parsed[1].block[0].args == ['"x y"']
    assert parsed[1].block[1].block[0].name == "e"


def test_only_the_proxy_publishes_a_port():
    services = compose()["services"]

    assert {name for name, service in services.items() if service.get("ports")} == {"proxy"}
    assert "8000" in [str(port) for port in services["web"].get("expose", [])]


def test_compose_proxy_runs_the_official_nginx_image_with_the_config_read_only():
    proxy = compose()["services"]["proxy"]

    assert re.fullmatch(r"nginx:[\w.-]+", proxy["image"]), proxy["image"]
    # The image's default site would answer for localhost: this file takes its place.
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"


def test_proxy_listens_on_the_published_port_and_passes_to_web_where_gunicorn_binds():
    services = compose()["services"]
    web_command = " ".join(services["web"]["command"])
    published = [str(port).rsplit(":", 1)[-1] for port in services["proxy"]["ports"]]
    upstream = only(nginx_site(), "upstream")

    assert [d.args for d in server() if d.name == "listen"] == [["80"]]
    assert published == ["80"]
    assert [d.args for d in upstream.block if d.name == "server"] == [["web:8000"]]
    assert "--bind 0.0.0.0:8000" in web_command
    for path, block in locations().items():
        assert [d.args for d in block if d.name == "proxy_pass"] == [[f"http://{upstream.args[0]}"]], path


def test_nginx_buffers_requests_and_responses_everywhere():
    for path in ["/", "/health", *webhook_paths(), reverse("admin:catalog_product_import_csv")]:
        assert effective(path, "proxy_request_buffering") == [["on"]], path
        assert effective(path, "proxy_buffering") == [["on"]], path


@pytest.mark.parametrize("name", ["client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout"])
def test_nginx_times_out_slow_clients(name):
    # nginx's defaults are 60-75 s; a slow client costs the proxy little, but not forever.
    (value,) = effective("/", name)

    assert nginx_seconds(value[0]) <= 20


def test_nginx_takes_the_largest_legitimate_bodies_and_no_more():
    csv_import = reverse("admin:catalog_product_import_csv")
    limits = {path: nginx_size(effective(path, "client_max_body_size")[0][0]) for path in webhook_paths()}

    assert all(limit >= settings.WEBHOOK_MAX_BODY_BYTES for limit in limits.values()), limits
    # 0 would mean no limit at all.
    assert 0 < nginx_size(effective("/", "client_max_body_size")[0][0]) <= 2 * 1024**2
    assert CSV_MAX_SIZE < nginx_size(effective(csv_import, "client_max_body_size")[0][0]) <= 2 * CSV_MAX_SIZE


def test_nginx_does_not_limit_the_webhook_senders_per_address():
    # Bitrix24 and Telegram post bursts from a few addresses.
    for path in webhook_paths():
        assert effective(path, "limit_conn") == [], path
        assert effective(path, "limit_req") == [], path
    assert effective("/", "limit_conn"), "people and API clients have a per-address limit"


def test_nginx_sets_the_forwarded_headers_for_every_location():
    headers = {d.args[0]: d.args[1] for d in server() if d.name == "proxy_set_header"}

    assert headers == {"Host": "$http_host", "X-Forwarded-For": "$remote_addr", "X-Forwarded-Proto": "$scheme"}
    # One proxy_set_header in a location would drop every inherited one there.
    for path, block in locations().items():
        assert not [d for d in block if d.name == "proxy_set_header"], path


def test_nginx_header_buffers_fit_gunicorns_limits(gunicorn_conf):
    (count, size), *_ = effective("/", "large_client_header_buffers")
    line_max = nginx_size(size) - 2  # without the CRLF

    assert int(count) * nginx_size(size) <= 64 * 1024
    # What the proxy lets through, gunicorn takes: its refusal would be a 400 from behind the proxy.
    assert gunicorn_conf["limit_request_line"] >= line_max
    assert gunicorn_conf["limit_request_field_size"] >= line_max
    assert 0 < gunicorn_conf["limit_request_fields"] <= 100


def test_nginx_waits_for_gunicorn_longer_than_gunicorn_waits_for_a_worker(gunicorn_conf):
    (read_timeout,) = effective("/", "proxy_read_timeout")

    assert gunicorn_conf["timeout"] > 30
    assert nginx_seconds(read_timeout[0]) > gunicorn_conf["timeout"]


def test_gunicorn_conf_sets_only_gunicorn_settings(gunicorn_conf):
    # A misspelt name (keep_alive, time_out) would be ignored silently by gunicorn.
    known = {setting.name for setting in KNOWN_SETTINGS}
    names = {name for name, value in gunicorn_conf.items() if not name.startswith("_") and name != "os"}

    assert names, "gunicorn.conf.py sets nothing"
    assert names - known == set()


def test_gunicorn_workers_default_to_8_and_follow_web_concurrency(gunicorn_conf, monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")

    assert gunicorn_conf["workers"] == 8
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"] == 3


def test_every_gunicorn_command_reads_gunicorn_conf_and_gives_only_the_address():
    (cmd,) = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "CMD"]
    docker_cmd = " ".join(yaml.safe_load(cmd))
    compose_cmd = " ".join(compose()["services"]["web"]["command"]).split("exec ", 1)[1]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (make_cmd,) = [line.strip() for line in makefile.splitlines() if "bin/gunicorn" in line]

    assert docker_cmd == "gunicorn --config gunicorn.conf.py --bind 0.0.0.0:8000"
    assert compose_cmd.strip() == "gunicorn --config gunicorn.conf.py --bind 0.0.0.0:8000"
    assert "--config gunicorn.conf.py" in make_cmd


def test_dockerfile_leaves_the_worker_count_to_gunicorn_conf():
    declared = " ".join(arguments for keyword, arguments in dockerfile_instructions() if keyword in {"ENV", "ARG"})

    assert "WEB_CONCURRENCY" not in declared
    assert "GUNICORN_CMD_ARGS" not in declared


def test_compose_gives_web_more_time_to_stop_than_gunicorns_graceful_timeout(gunicorn_conf):
    grace = compose()["services"]["web"].get("stop_grace_period", "10s")  # Docker's default

    assert nginx_seconds(grace) > gunicorn_conf["graceful_timeout"]
