"""Drill: slow clients against the web server, behind the proxy and without it (issue 11, finding 3).

    .venv/bin/python bench/drill_slowloris.py [--connections 20] [--duration 30] [--interval 5]

Starts the deployed set-up as processes: gunicorn with gunicorn.conf.py (SQLite
and the local-memory cache in a temporary DATA_DIR, migrated first) and nginx
from Debian's package (/usr/sbin/nginx, in the foreground) with deploy/nginx.conf
as it is, only its upstream pointed at that gunicorn and its listen address at
a free loopback port; pid, logs and temporary files in the same directory.

Then, for each attack, `--connections` slow clients for `--duration` seconds
while GET /health is probed every `--probe-every` seconds (a new connection
each, `--probe-timeout` at most):

- slow headers (slowloris): a request line and then one more header line every
  `--interval` seconds, never the blank line that ends the header;
- slow body: a whole header for POST /b24/imbot/events announcing 100,000
  bytes, then 4 of them every `--interval` seconds.

A client the server drops connects again, so the attack stays at its size. Each
attack runs through the proxy and then straight at gunicorn, as it was deployed
before (`--no-direct` skips that); the direct runs are expected to fail, they
show what the proxy is for. Prints, per run, the probes sent and answered, how
many took over 1 s or failed, their p50 and max latency, and the slow
connections opened and dropped by the server. Exits 1 when a probe through the
proxy took over 1 s or failed, 2 when nginx is missing. Every process it started
is stopped on exit. About 3 minutes, most of it the attacks.
"""

import argparse
import http.client
import os
import runpy
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
NGINX = "/usr/sbin/nginx"
SITE = ROOT / "deploy" / "nginx.conf"
# What deploy/nginx.conf says for docker-compose.yml, and what the drill puts instead.
SITE_UPSTREAM = "server web:8000;"
SITE_LISTEN = "listen 80;"
SLOW_BODY_PATH = "/b24/imbot/events"
SLOW_BODY_LENGTH = 100_000
OVER = 1.0  # seconds: the drill's bound for a probe


# --- the services ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Services:
    """Child processes, each in a process group of its own, stopped whole on exit."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict) -> None:
        log = open(self.logdir / f"{name}.log", "wb")  # kept open for the child's life
        self.procs[name] = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0
        )

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.logdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def count(self, name: str, text: str) -> int:
        path = self.logdir / f"{name}.log"
        return path.read_text(errors="replace").count(text) if path.exists() else 0

    def stop(self) -> None:
        # TERM: gunicorn and nginx both stop at once on it (nginx's QUIT would
        # wait for the slow connections).
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The group too: workers a master left behind.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def app_environment(data_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DATA_DIR=str(data_dir),
        # Set empty, not unset: an empty value wins over the project's .env and means the default.
        DATABASE_URL="",
        REDIS_URL="",
        SPOOL_DIR="",
        STATIC_ROOT=str(data_dir / "static"),
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        # No task worker runs in the drill: /health is not to report it gone after two minutes.
        Q_HEARTBEAT_MAX_AGE_S="0",
    )
    return env


def nginx_config(workdir: Path, gunicorn_port: int, nginx_port: int) -> Path:
    """deploy/nginx.conf as it is, pointed at the drill's ports, in a main config of the drill's paths."""
    site = SITE.read_text(encoding="utf-8")
    for old in (SITE_UPSTREAM, SITE_LISTEN):
        if site.count(old) != 1:
            raise SystemExit(f"{SITE} no longer says `{old}` once; update the drill with it")
    site = site.replace(SITE_UPSTREAM, f"server 127.0.0.1:{gunicorn_port};")
    site = site.replace(SITE_LISTEN, f"listen 127.0.0.1:{nginx_port};")
    (workdir / "storebot.conf").write_text(site, encoding="utf-8")
    # A root master drops its workers to another user (Debian's is www-data);
    # they write request bodies to client_body/, which nginx makes theirs.
    user = "user www-data;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = f"""{user}daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log {workdir / "access.log"};
{temp}
    include {workdir / "storebot.conf"};
}}
"""
    path = workdir / "nginx.conf"
    path.write_text(main, encoding="utf-8")
    return path


def slow_requests_logged(services: Services) -> int:
    """Requests of the slow clients in gunicorn's access log: through the proxy, none should get there."""
    return services.count("gunicorn", "/health?slow=") + services.count("gunicorn", f"POST {SLOW_BODY_PATH}")


def wait_for_health(port: int, services: Services, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        services.check()
        status, _ = probe_once(port, 2)
        if status == 200:
            return
        last = str(status)
        time.sleep(0.3)
    raise RuntimeError(f"/health on :{port} did not answer 200 in {timeout:.0f} s ({last})")


# --- the attack and the probes ---------------------------------------------


@dataclass
class Attack:
    """Slow clients that keep `connections` open until `stop` is set."""

    port: int
    kind: str  # "headers" or "body"
    connections: int
    interval: float
    stop: threading.Event = field(default_factory=threading.Event)
    opened: int = 0
    dropped: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(self.connections)]
        for thread in threads:
            thread.start()
        return threads

    def first_bytes(self, n: int) -> bytes:
        host = f"Host: 127.0.0.1:{self.port}\r\n"
        if self.kind == "headers":
            return f"GET /health?slow={n} HTTP/1.1\r\n{host}".encode()
        return (
            f"POST {SLOW_BODY_PATH} HTTP/1.1\r\n{host}"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {SLOW_BODY_LENGTH}\r\n\r\n"
        ).encode()

    def next_bytes(self, step: int) -> bytes:
        return f"X-Slow-{step}: {step}\r\n".encode() if self.kind == "headers" else b"a=1&"

    def client(self, n: int) -> None:
        while not self.stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                with self.lock:
                    self.refused += 1
                self.stop.wait(0.5)
                continue
            with self.lock:
                self.opened += 1
            try:
                sock.sendall(self.first_bytes(n))
                step = 0
                while not self.stop.is_set():
                    # Wait out the interval, but notice at once when the server
                    # answers (408, 400) or closes: then connect again.
                    readable, _, _ = select.select([sock], [], [], self.interval)
                    if self.stop.is_set():
                        break
                    if readable:
                        raise ConnectionAbortedError("the server answered or closed")
                    sock.sendall(self.next_bytes(step))
                    step += 1
            except OSError:
                with self.lock:
                    self.dropped += 1
            finally:
                sock.close()


def probe_once(port: int, timeout: float) -> tuple[int | str, float]:
    """(status or error name, seconds) of one GET /health on a new connection."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__, time.monotonic() - started
    finally:
        conn.close()


@dataclass
class Run:
    setup: str
    attack: str
    probes: list[tuple[int | str, float]]
    opened: int
    dropped: int
    refused: int
    recovered_s: float | None

    @property
    def answered(self) -> list[float]:
        return [seconds for status, seconds in self.probes if status == 200]

    @property
    def failed(self) -> int:
        return sum(1 for status, _ in self.probes if status != 200)

    @property
    def over(self) -> int:
        return sum(1 for seconds in self.answered if seconds > OVER)

    @property
    def ok(self) -> bool:
        return bool(self.probes) and self.failed == 0 and self.over == 0

    def failures(self) -> str:
        kinds: dict[str, int] = {}
        for status, _ in self.probes:
            if status != 200:
                kinds[str(status)] = kinds.get(str(status), 0) + 1
        return ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))


def run_attack(setup: str, port: int, kind: str, args) -> Run:
    attack = Attack(port, kind, args.connections, args.interval)
    threads = attack.start()
    results: list[tuple[int | str, float]] = []
    lock = threading.Lock()

    def probe() -> None:
        outcome = probe_once(port, args.probe_timeout)
        with lock:
            results.append(outcome)

    # An open loop: a probe is due at its time whether or not the last one came back.
    probes = []
    started = time.monotonic()
    due = started + args.probe_every  # the slow clients' first bytes go out first
    while due < started + args.duration:
        time.sleep(max(0.0, due - time.monotonic()))
        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        probes.append(thread)
        due += args.probe_every
    time.sleep(max(0.0, started + args.duration - time.monotonic()))
    for thread in probes:
        thread.join()
    attack.stop.set()
    for thread in threads:
        thread.join()
    return Run(setup, kind, results, attack.opened, attack.dropped, attack.refused, recovery(port, args))


def recovery(port: int, args) -> float | None:
    """Seconds from the attack's end until /health answers within the bound again (None: not in 60 s)."""
    started = time.monotonic()
    while time.monotonic() - started < 60:
        status, seconds = probe_once(port, args.probe_timeout)
        if status == 200 and seconds <= OVER:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


# --- the report ------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.0f}" if seconds >= 0.1 else f"{seconds * 1000:.1f}"


def print_runs(runs: list[Run]) -> None:
    header = (
        "set-up",
        "attack",
        "probes",
        "answered",
        "over 1 s",
        "failed",
        "p50 ms",
        "max ms",
        "slow conns",
        "verdict",
    )
    rows = [header]
    for run in runs:
        answered = run.answered
        verdict = "ok" if run.ok else "FAILED"
        if run.setup == "gunicorn alone":
            verdict += " (expected)" if not run.ok else ""
        rows.append(
            (
                run.setup,
                f"slow {run.attack}",
                str(len(run.probes)),
                str(len(answered)),
                str(run.over),
                str(run.failed),
                ms(statistics.median(answered)) if answered else "—",
                ms(max(answered)) if answered else "—",
                f"{run.opened} opened, {run.dropped} dropped",
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for run in runs:
        details = []
        if run.failed:
            details.append(f"failed probes: {run.failures()}")
        if run.refused:
            details.append(f"{run.refused} slow connects refused")
        back = "not within 60 s" if run.recovered_s is None else f"{run.recovered_s:.1f} s"
        details.append(f"/health under {OVER:.0f} s again {back} after the attack")
        print(f"  {run.setup}, slow {run.attack}: " + "; ".join(details))


# --- main ------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=20, help="slow connections (default 20)")
    parser.add_argument("--duration", type=float, default=30, help="seconds each attack lasts (default 30)")
    parser.add_argument("--interval", type=float, default=5, help="seconds between a slow client's sends (default 5)")
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds between /health probes (default 0.5)")
    parser.add_argument("--probe-timeout", type=float, default=5, help="seconds a probe waits (default 5)")
    parser.add_argument(
        "--attacks", default="headers,body", help="comma-separated: headers, body (default both, in that order)"
    )
    parser.add_argument("--no-direct", action="store_true", help="skip the runs straight at gunicorn")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) afterwards")
    args = parser.parse_args()
    kinds = [kind.strip() for kind in args.attacks.split(",") if kind.strip()]
    if not kinds or set(kinds) - {"headers", "body"}:
        parser.error("--attacks takes headers, body or both")
    # Bounded: the machine is shared, and this is a drill, not a load test.
    if not (1 <= args.connections <= 200 and 1 <= args.duration <= 120 and args.probe_every >= 0.1):
        parser.error("keep it bounded: 1-200 connections, 1-120 s, a probe at most every 0.1 s")

    if not os.access(NGINX, os.X_OK):
        print(f"{NGINX} not found: the drill runs Debian's nginx. Install it with\n    apt-get install -y nginx")
        return 2
    nginx_version = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    gunicorn_conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    workdir = Path(tempfile.mkdtemp(prefix="drill_slowloris_"))
    # Traversable (not readable) by nginx's workers when they run as www-data.
    workdir.chmod(0o711)
    (workdir / "nginx").mkdir(mode=0o755)
    services = Services(workdir)
    kept = args.keep

    def stop_on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        env = app_environment(workdir / "data")
        print(f"drill_slowloris: set-up in {workdir}")
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

        gunicorn_port, nginx_port = free_port(), free_port()
        services.start(
            "gunicorn",
            [
                GUNICORN,
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{gunicorn_port}",
                # Its own control socket, not the shared default in ~/.gunicorn.
                "--control-socket",
                str(workdir / "gunicorn.ctl"),
            ],
            env,
        )
        wait_for_health(gunicorn_port, services)

        config = nginx_config(workdir / "nginx", gunicorn_port, nginx_port)
        nginx = [NGINX, "-p", str(workdir / "nginx"), "-e", str(workdir / "nginx" / "error.log"), "-c", str(config)]
        checked = subprocess.run([*nginx, "-t"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the generated configuration:\n{checked.stderr}")
        services.start("nginx", nginx, env)
        wait_for_health(nginx_port, services)

        print(
            f"nginx {nginx_version} ({NGINX}, deploy/nginx.conf) on :{nginx_port} -> gunicorn on :{gunicorn_port} "
            f"({gunicorn_conf['workers']} sync workers, timeout {gunicorn_conf['timeout']} s, gunicorn.conf.py)"
        )
        print(
            f"attack: {args.connections} slow connections for {args.duration:.0f} s, one send every "
            f"{args.interval:g} s; GET /health every {args.probe_every:g} s (timeout {args.probe_timeout:g} s); "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
        )

        plan = [("proxy + gunicorn", nginx_port, kind) for kind in kinds]
        if not args.no_direct:
            plan += [("gunicorn alone", gunicorn_port, kind) for kind in kinds]
        runs = []
        reached = None
        for setup, port, kind in plan:
            if setup == "gunicorn alone" and reached is None:
                reached = slow_requests_logged(services)
            print(f"... {setup}, slow {kind}", flush=True)
            runs.append(run_attack(setup, port, kind, args))
            services.check()
        if reached is None:
            reached = slow_requests_logged(services)

        print()
        print_runs(runs)
        timeouts = services.count("gunicorn", "WORKER TIMEOUT")
        print(
            f"slow clients' requests that reached gunicorn through the proxy: {reached}; "
            f"gunicorn workers killed for a timeout: {timeouts}; load average now {os.getloadavg()[0]:.2f}"
        )
        proxied = [run for run in runs if run.setup == "proxy + gunicorn"]
        passed = all(run.ok for run in proxied)
        print(
            "result: through the proxy every probe answered within 1 s"
            if passed
            else f"result: FAILED, a probe through the proxy took over 1 s or failed (logs kept in {workdir})"
        )
        kept = kept or not passed
        return 0 if passed else 1
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    except Exception:
        kept = True
        print(f"drill_slowloris: logs kept in {workdir}", file=sys.stderr)
        raise
    finally:
        services.stop()
        if not kept:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
