"""`make run` stops everything it started on Ctrl-C or on SIGTERM to its process group.

The launcher (deploy/run_dev.py) is started as `make run` starts it, in a session
of its own, with children that behave like gunicorn and qcluster (a main process
with processes of its own); the test signals the whole group, as a terminal or a
supervisor does, and then looks for every process that was running.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "deploy" / "run_dev.py"

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists() or not hasattr(os, "killpg"), reason="needs Linux /proc and process groups"
)

# A main process with a child of its own, in its process group: on SIGTERM it stops
# its child and exits, like qcluster's sentinel and gunicorn's master. A child that
# the group signal reached directly would die at once: qcluster's sentinel then waited
# for its workers and monitor until its task timeout.
SUPERVISOR = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
def stop(signum, frame):
    child.terminate()
    child.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(0.1)
"""
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
SLEEPER = "import time; time.sleep(600)"


def stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    info = stat(pid)
    return info is not None and info[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := stat(int(entry.name))):
            parents[int(entry.name)] = info[1]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def python(code: str) -> str:
    return f"{sys.executable} -c '{code}'"


def launch(*specs: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), *specs],
        cwd=ROOT,
        env={**os.environ, "RUN_DEV_STOP_S": "2", **(env or {})},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for_processes(launcher: subprocess.Popen, count: int, timeout: float = 30) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = descendants(launcher.pid)
        if len(found) >= count:
            return found
        assert launcher.poll() is None, launcher.stderr.read().decode()
        time.sleep(0.1)
    raise AssertionError(f"{count} processes did not start in {timeout:.0f} s: {descendants(launcher.pid)}")


def stop_group_and_wait(launcher: subprocess.Popen, signum: int, processes: set[int]) -> float:
    started = time.monotonic()
    os.killpg(launcher.pid, signum)
    launcher.wait(timeout=10)
    while any(alive(pid) for pid in processes) and time.monotonic() - started < 10:
        time.sleep(0.05)
    assert [pid for pid in processes if alive(pid)] == []
    return time.monotonic() - started


@pytest.fixture
def cleanup():
    launchers = []
    yield launchers.append
    for launcher in launchers:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_group_stops_both_children_and_theirs(cleanup, signum):
    launcher = launch(f"web={python(SUPERVISOR)}", f"worker={python(SUPERVISOR)}")
    cleanup(launcher)
    processes = wait_for_processes(launcher, 4)

    seconds = stop_group_and_wait(launcher, signum, processes)

    assert seconds < 5
    assert launcher.returncode == 0


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(cleanup):
    launcher = launch(f"web={python(SLEEPER)}", f"worker={python(STUBBORN)}")
    cleanup(launcher)
    processes = wait_for_processes(launcher, 2)

    stop_group_and_wait(launcher, signal.SIGTERM, processes)

    assert b"worker did not stop in 2 s" in launcher.stderr.read()


def test_when_one_child_exits_the_other_is_stopped_and_its_status_is_the_exit_status(cleanup):
    launcher = launch(f"web={python(SUPERVISOR)}", f"worker={python('import sys, time; time.sleep(1); sys.exit(3)')}")
    cleanup(launcher)
    processes = wait_for_processes(launcher, 3)

    assert launcher.wait(timeout=10) == 3
    assert [pid for pid in processes if alive(pid)] == []


def test_make_run_starts_the_server_and_the_worker_through_the_launcher():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]

    assert "deploy/run_dev.py" in recipe
    assert "gunicorn" in recipe and "manage.py qcluster" in recipe
    assert "&" not in recipe.replace("&&", "")  # nothing started in the background behind the launcher's back


def test_the_real_qcluster_stops_within_seconds_on_sigterm_to_the_group(cleanup, tmp_path):
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "", "REDIS_URL": "", "Q_WORKERS": "2"}
    full_env = {key: value for key, value in {**os.environ, **env}.items() if key != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=full_env, check=True, timeout=120
    )
    launcher = launch(
        f"web={python(SLEEPER)}",
        f"worker=nice -n 19 {sys.executable} manage.py qcluster",
        env=env | {"RUN_DEV_STOP_S": "8"},
    )
    cleanup(launcher)
    # The sentinel, two workers, the monitor and the pusher under qcluster's main process, and the web stand-in.
    processes = wait_for_processes(launcher, 7)
    time.sleep(1)

    seconds = stop_group_and_wait(launcher, signal.SIGTERM, processes | descendants(launcher.pid))

    assert seconds < 8, "qcluster was killed, not stopped"
    assert b"did not stop" not in launcher.stderr.read()
