"""Run the web server and the task worker together for `make run`, and stop both.

    python deploy/run_dev.py "web=gunicorn --config gunicorn.conf.py" "worker=nice -n 19 python manage.py qcluster"

Each NAME=COMMAND is started as a child in a process group of its own. Ctrl-C
(SIGINT) or SIGTERM, to this process or to the whole group `make run` runs in,
is passed on as SIGTERM to each child's main process only: qcluster and gunicorn
stop their own worker processes in order. A signal sent to every process of the
group at once hit qcluster's workers and monitor directly, and its sentinel then
waited out its timeout for them. A child still running RUN_DEV_STOP_S seconds
(default 8) after that is killed with its whole group. When one child exits on its
own the other is stopped too, and the exit status is the first one's.
"""

import os
import shlex
import signal
import subprocess
import sys
import time

STOP_S = float(os.environ.get("RUN_DEV_STOP_S") or 8)


def parse(specs: list[str]) -> list[tuple[str, list[str]]]:
    commands = []
    for spec in specs:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command.strip():
            raise SystemExit(f"run_dev: expected NAME=COMMAND, got {spec!r}")
        commands.append((name, shlex.split(command)))
    return commands


class Stop(Exception):
    pass


def _stop_requested(signum, frame):
    raise Stop(signum)


def exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def stop(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to each child, then SIGKILL to the groups of those still running after STOP_S."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_S
    while time.monotonic() < deadline and any(child.poll() is None for child in children.values()):
        time.sleep(0.1)
    for name, child in children.items():
        if child.poll() is None:
            print(f"run_dev: {name} did not stop in {STOP_S:g} s, killing it", file=sys.stderr, flush=True)
    # Those, with their own processes, and whatever a stopped child left behind in its group.
    for child in children.values():
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child.wait()


def main(argv: list[str]) -> int:
    commands = parse(argv)
    if not commands:
        raise SystemExit(__doc__)
    signal.signal(signal.SIGINT, _stop_requested)
    signal.signal(signal.SIGTERM, _stop_requested)
    children: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands:
            # Its own process group: a signal to ours (Ctrl-C, `kill -TERM -PGID`) reaches it only through us.
            children[name] = subprocess.Popen(command, process_group=0)
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"run_dev: {name} exited with {child.returncode}", file=sys.stderr, flush=True)
                    return exit_status(child.returncode)
            time.sleep(0.2)
    except Stop:
        return 0
    finally:
        stop(children)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
