"""The systemd units and the backup script in deploy/ (README.md, "Operations").

The unit files are parsed here; their commands must name files and management commands
this repository has, and their stop timeouts must cover gunicorn's graceful timeout and
django-q2's task timeout. `systemd-analyze verify` runs on them when it is installed.
deploy/storebot-backup.sh is syntax-checked with `bash -n`, and, when pg_dump, pg_restore
and psql are on PATH and a PostgreSQL server answers (STOREBOT_TEST_PG, default
postgres://postgres@127.0.0.1:5432, a role that may create databases), a scratch database
is backed up and restored into another; both are dropped afterwards.
"""

import os
import runpy
import shlex
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Where the units expect the checkout (deploy/README.md's layout).
APP_DIR = "/srv/storebot/app"
ENV_FILE = "/etc/storebot.env"
SCRIPT = DEPLOY / "storebot-backup.sh"
UNITS = ["storebot-web.service", "storebot-worker.service", "storebot-backup.service", "storebot-backup.timer"]


def parse_unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """{section: [(key, value), ...]} in file order; a key may repeat (ExecStartPre), as systemd allows."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for number, raw in enumerate((DEPLOY / name).read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{name}:{number}: keep each setting on one line"
        if line.startswith("["):
            assert line.endswith("]"), f"{name}:{number}: {line!r}"
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None, f"{name}:{number}: a setting before any [section]"
        key, sep, value = line.partition("=")
        assert sep, f"{name}:{number}: not key=value: {line!r}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit: dict, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}: {found}"
    return found[0]


def seconds(text: str) -> float:
    """A systemd time span as these units write it: `40`, `40s`, `11min`."""
    for suffix, factor in (("min", 60), ("s", 1)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def command(line: str) -> list[str]:
    """An Exec*= line as argv, without systemd's prefixes (`+`, `-`, `@`, `!`, `:`)."""
    return shlex.split(line.lstrip("+-@!:"))


def repo_path(path: str) -> Path:
    assert path.startswith(APP_DIR + "/"), f"{path} is not in {APP_DIR}"
    return ROOT / path.removeprefix(APP_DIR + "/")


@pytest.mark.parametrize("name", UNITS)
def test_unit_parses(name):
    unit = parse_unit(name)
    assert value(unit, "Unit", "Description")
    if name.endswith(".service"):
        assert values(unit, "Service", "ExecStart")


@pytest.mark.parametrize("name", ["storebot-web.service", "storebot-worker.service", "storebot-backup.service"])
def test_service_runs_as_the_app_user_with_the_settings_file(name):
    unit = parse_unit(name)
    assert value(unit, "Service", "User") == "storebot"
    assert value(unit, "Service", "Group") == "storebot"
    # Required (no leading "-"): without SECRET_KEY and DATABASE_URL the app would run on
    # a generated key and a SQLite file, so a missing file must stop the unit.
    assert ENV_FILE in values(unit, "Service", "EnvironmentFile")


@pytest.mark.parametrize("name", ["storebot-web.service", "storebot-worker.service"])
def test_app_services(name):
    unit = parse_unit(name)
    assert value(unit, "Service", "WorkingDirectory") == APP_DIR
    assert value(unit, "Service", "Restart") == "on-failure"
    assert value(unit, "Service", "KillSignal") == "SIGTERM"
    # TERM to the main process only: gunicorn's master and qcluster each stop their
    # children gracefully; TERM to every process would cut the work in hand short.
    assert value(unit, "Service", "KillMode") == "mixed"
    assert value(unit, "Install", "WantedBy") == "multi-user.target"


def test_exec_commands_name_files_and_commands_that_exist():
    manage_commands = get_commands()
    checked = 0
    for name in ["storebot-web.service", "storebot-worker.service", "storebot-backup.service"]:
        unit = parse_unit(name)
        for key in ("ExecStartPre", "ExecStart"):
            for line in values(unit, "Service", key):
                argv = command(line)
                program = argv[0]
                assert program.startswith("/"), f"{name}: {key} needs an absolute path: {line}"
                if program.startswith(f"{APP_DIR}/.venv/bin/"):
                    # The virtualenv is made on the host (pip install -r requirements.txt).
                    assert program.rsplit("/", 1)[1] in {"python", "gunicorn"}, line
                elif program.startswith(APP_DIR + "/"):
                    path = repo_path(program)
                    assert path.is_file(), f"{name}: {line}"
                    assert os.access(path, os.X_OK), f"{path} is not executable"
                if "manage.py" in argv:
                    assert (ROOT / "manage.py").is_file()
                    subcommand = argv[argv.index("manage.py") + 1]
                    assert subcommand in manage_commands, f"{name}: no management command {subcommand}"
                if "--config" in argv:
                    assert (ROOT / argv[argv.index("--config") + 1]).is_file(), line
                checked += 1
    assert checked >= 5


def test_web_unit_runs_gunicorn_with_its_config():
    unit = parse_unit("storebot-web.service")
    argv = command(value(unit, "Service", "ExecStart"))
    assert argv[0].endswith("/gunicorn")
    assert argv[argv.index("--config") + 1] == "gunicorn.conf.py"
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8000"
    # gunicorn supports sd_notify; the worker's After= then waits until it listens.
    assert value(unit, "Service", "Type") == "notify"
    pre = [command(line) for line in values(unit, "Service", "ExecStartPre")]
    assert [a[a.index("manage.py") + 1] for a in pre] == ["migrate", "replay_spool"]
    graceful = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["graceful_timeout"]
    assert seconds(value(unit, "Service", "TimeoutStopSec")) > graceful


def test_worker_unit_runs_qcluster_and_waits_for_the_task_in_hand():
    unit = parse_unit("storebot-worker.service")
    argv = command(value(unit, "Service", "ExecStart"))
    assert argv[-2:] == ["manage.py", "qcluster"]
    assert "storebot-web.service" in value(unit, "Unit", "After").split()
    # A task may run for Q_TIMEOUT_S before django-q2 kills it; the stop waits for that.
    assert seconds(value(unit, "Service", "TimeoutStopSec")) > settings.Q_CLUSTER["timeout"]
    assert seconds(value(unit, "Service", "TimeoutStopSec")) >= 600 + 60


def test_backup_unit_and_timer():
    service = parse_unit("storebot-backup.service")
    assert value(service, "Service", "Type") == "oneshot"
    assert repo_path(command(value(service, "Service", "ExecStart"))[0]) == SCRIPT
    assert "BACKUP_KEEP=14" in " ".join(values(service, "Service", "Environment")).split()
    timer = parse_unit("storebot-backup.timer")
    assert value(timer, "Timer", "Unit") == "storebot-backup.service"
    assert value(timer, "Timer", "OnCalendar")
    assert value(timer, "Timer", "Persistent") == "true"
    assert value(timer, "Install", "WantedBy") == "timers.target"


def test_backup_script_is_executable_bash():
    assert SCRIPT.stat().st_mode & stat.S_IXUSR
    assert SCRIPT.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path):
    """systemd's own parser: an unknown key or a bad value is a warning on stderr (exit 0), so no output at all."""
    if not (ROOT / ".venv" / "bin" / "gunicorn").exists():
        pytest.skip("no .venv with gunicorn in the checkout: verify checks that ExecStart's programs exist")
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace(APP_DIR, str(ROOT)), encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", *(f"./{name}" for name in UNITS)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


# End to end against a real PostgreSQL.

PG_BASE = os.environ.get("STOREBOT_TEST_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")


def psql(database: str, sql: str) -> str:
    result = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql, f"{PG_BASE}/{database}"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PGCONNECT_TIMEOUT": "3"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def postgres_reachable() -> bool:
    if not all(shutil.which(tool) for tool in ("pg_dump", "pg_restore", "psql")):
        return False
    try:
        return psql("postgres", "select 1") == "1"
    except (AssertionError, subprocess.TimeoutExpired):
        return False


@pytest.fixture
def scratch_databases():
    if not postgres_reachable():
        pytest.skip(f"pg_dump/pg_restore/psql not on PATH or no PostgreSQL at {PG_BASE}")
    suffix = uuid.uuid4().hex[:8]
    names = [f"storebot_backup_test_src_{suffix}", f"storebot_backup_test_dst_{suffix}"]
    for name in names:
        psql("postgres", f"create database {name}")
    try:
        yield names
    finally:
        for name in names:
            psql("postgres", f"drop database if exists {name} with (force)")


def run_backup(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BACKUP_DIR": str(tmp_path), "PGCONNECT_TIMEOUT": "3", **env},
    )


def test_backup_and_restore_end_to_end(scratch_databases, tmp_path):
    source, restored = scratch_databases
    psql(source, "create table product (id int primary key, name text)")
    psql(source, "insert into product values (1, 'Чайник'), (2, 'Кружка')")
    # Older archives of this prefix beyond BACKUP_KEEP go; other files stay.
    old = ["storebot-20000101T000000Z.dump", "storebot-20000102T000000Z.dump", "storebot-20000103T000000Z.dump"]
    for name in old:
        (tmp_path / name).write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not a backup")

    result = run_backup(tmp_path, DATABASE_URL=f"{PG_BASE}/{source}", BACKUP_KEEP="2")
    assert result.returncode == 0, result.stderr
    archives = sorted(p.name for p in tmp_path.glob("storebot-*.dump"))
    assert len(archives) == 2
    assert archives[0] == old[-1]
    new = tmp_path / archives[1]
    assert str(new) in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*archives, "notes.txt"])
    assert stat.S_IMODE(new.stat().st_mode) == 0o600

    # Twice: --clean --if-exists also restores over a database that has the tables.
    for _ in range(2):
        subprocess.run(
            ["pg_restore", "--clean", "--if-exists", "--no-owner", "-d", f"{PG_BASE}/{restored}", str(new)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    assert psql(restored, "select string_agg(name, ',' order by id) from product") == "Чайник,Кружка"


def test_backup_fails_loudly_and_leaves_no_file(scratch_databases, tmp_path):
    source, _ = scratch_databases
    result = run_backup(tmp_path, DATABASE_URL=f"{PG_BASE}/{source}_missing")
    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []

    result = run_backup(tmp_path, DATABASE_URL=f"{PG_BASE}/{source}", BACKUP_KEEP="0")
    assert result.returncode == 2
    assert list(tmp_path.iterdir()) == []
