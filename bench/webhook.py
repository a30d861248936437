"""Acknowledgement latency of the channels' webhooks under load, and the replies behind them.

    .venv/bin/python bench/webhook.py [--channel bitrix24|telegram|both] [--events 2000] [--concurrency 50]

Runs the real stack as separate processes: gunicorn serving config.wsgi,
`--qclusters` (default 2) django-q2 clusters (`manage.py qcluster`, as two
worker nodes would run) on a Redis broker, PostgreSQL, and a fake of the
channel's API (in a process of its own, at the workers' niceness: it stands in
for a system on another machine) that answers the sends and counts them per
dialog:

- bitrix24: ONIMBOTMESSAGEADD events (the test fixture, each with its own
  MESSAGE_ID and DIALOG_ID) from `--portals` portals (distinct
  auth[member_id] and bot id, all accepted with the webhook-mode application
  token) to POST /b24/imbot/events; the fake REST server answers
  imbot.message.add with a per-portal message id, so ids repeat across portals;
- telegram: private text-message updates (message_text.json, each with its own
  update_id, chat and message_id) to POST /tg/webhook with the secret token
  header; the fake Bot API answers sendMessage / sendPhoto / sendMediaGroup /
  answerCallbackQuery / getMe in Telegram's shape, with message ids counted per
  chat from 1, as Telegram does, so ids repeat across chats.

Per channel, each from a fresh state (conversations, channel accounts, received
events and task results emptied, Redis flushed, the services started anew):
`--serial` events one at a time (the warm-up), N events by C connections in a
closed loop, `--open-events` more in an open loop at `--open-share` of the
measured throughput, then a wait until every message has a sent reply, a check
that every dialog got exactly one (the fake's counts, the database's delivery
states), and N GET /health with the same concurrency for comparison. Database
`storebot_bench_webhook` (the catalog kept), Redis db 6. Exits 1 when a target
of any channel is missed.
"""

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.database import ensure_database
from bench.stack import (
    CHANNELS,
    TELEGRAM_BENCH_RATE_PER_BOT,
    Bitrix24Channel,
    FakeServer,
    Services,
    TelegramChannel,
    database_check,
    db_connect,
    drain_counts,
    drive,
    fake_counts,
    free_port,
    fresh_state,
    manage,
    print_run,
    print_targets,
    start_fake,
    start_services,
    stop_fake,
    wait_for_health,
)
from bench.stack import load_average as _load

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storebot_bench_webhook"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"

TARGET_OPEN_P99_MS = 50.0
TARGET_THROUGHPUT_SHARE = 0.5


# --- one channel -----------------------------------------------------------


def run_channel(channel, args, base_env: dict, db_url: str, redis_url: str) -> dict:
    """The stack started afresh for one channel, the load, the drain, the checks and /health."""
    total = args.serial + args.events + args.open_events
    fake = channel.fake(total)
    # A process of its own, at the workers' niceness.
    fake_process = start_fake(fake, args.worker_nice)
    # The other channel off: one channel's events at a time.
    other = TelegramChannel if channel.name == "bitrix24" else Bitrix24Channel
    env = {**base_env, **other.off, **channel.env(fake)}
    fresh_state(db_url, redis_url)
    port = free_port()
    logdir = Path(tempfile.mkdtemp(prefix=f"bench-webhook-{channel.name}-"))
    services = Services(env, logdir)
    print(f"\n===== {channel.name}: {channel.describe()}; fake API on :{fake.port}")
    result = None
    try:
        start_services(
            services,
            port,
            gunicorn_workers=args.gunicorn_workers,
            gunicorn_threads=args.gunicorn_threads,
            qclusters=args.qclusters,
            worker_nice=args.worker_nice,
        )
        wait_for_health(port, services)
        print(
            f"gunicorn on :{port} ({args.gunicorn_workers} workers × {args.gunicorn_threads} threads), "
            f"{args.qclusters} qcluster{'s' if args.qclusters != 1 else ''} × {args.q_workers} workers at nice "
            f"{args.worker_nice}; logs in {logdir}"
        )
        result = measure(channel, args, port, fake, services, db_url)
    finally:
        services.stop()
        stop_fake(fake, fake_process)
        trouble = services.trouble()
        print(f"{channel.name}: gunicorn and qclusters stopped; load average {_load()}")
        if result is not None:
            result["trouble"] = trouble
        for name, lines in trouble.items():
            if lines:
                print(f"  {name}.log: {len(lines)} lines of trouble, e.g.:")
                for line in lines[:8]:
                    print(f"    {line[:300]}")
        if result is not None and result["ok"] and not any(trouble.values()):
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            print(f"  logs kept in {logdir}")
    return result


def measure(channel, args, port: int, fake: FakeServer, services: Services, db_url: str) -> dict:
    unit = channel.unit
    serial_bodies = channel.build(0, args.serial)
    bodies = channel.build(args.serial, args.events)
    open_bodies = channel.build(args.serial + args.events, args.open_events)
    total = len(serial_bodies) + len(bodies) + len(open_bodies)
    post = {"port": port, "method": "POST", "path": channel.path, "headers": channel.headers}

    print(f"\nload average before: {_load()}")
    serial = None
    if serial_bodies:
        serial = drive(bodies=serial_bodies, concurrency=1, processes=1, **post)
        print_run(f"{unit}s one at a time (also the warm-up)", serial)
    t_load = time.time()
    closed = drive(bodies=bodies, concurrency=args.concurrency, processes=args.load_processes, **post)
    print_run(f"POST {channel.path}", closed)
    services.check()
    open_run = None
    if open_bodies:
        # A channel posts an event when it happens, not when the last one was
        # answered: the same endpoint at a share of the throughput just
        # measured, while the workers are still answering the burst.
        rate = max(1.0, closed["rps"] * args.open_share)
        open_run = drive(
            bodies=open_bodies, concurrency=args.concurrency, processes=args.load_processes, rate=rate, **post
        )
        print_run(f"POST {channel.path} at {rate:.0f}/s (open loop)", open_run, closed_loop=False)
        services.check()

    # The drain: every customer message has a delivered reply.
    print(f"\nload average after the {unit}s: {_load()}")
    conn = db_connect(db_url)
    t_drain = time.time()
    deadline = t_drain + args.drain_timeout
    last_print = 0.0
    while True:
        customers, answered, unsent = drain_counts(conn, channel.name)
        now = time.time()
        done = customers >= total and answered >= customers
        if done or now >= deadline or now - last_print >= 5:
            print(
                f"  drain +{now - t_drain:5.1f} s: {customers} messages, {answered} answered and sent, "
                f"{unsent} replies not sent (yet), {sum(fake_counts(fake.port)['replies'].values())} at the fake API"
            )
            last_print = now
        if done or now >= deadline:
            break
        services.check()
        time.sleep(0.5)
    drain_s = time.time() - t_drain
    # A late duplicate (a sweep, a retry) would come after the last first reply: give it a moment.
    time.sleep(2)
    db = database_check(conn, channel.name)
    conn.close()

    counts = fake_counts(fake.port)
    expected = channel.expected(total)
    at_fake = channel.reply_check(counts, expected)
    # The id each sent reply was recorded with is the one the fake gave its dialog last.
    mismatched = sum(1 for conv, mid in db["ids"] if counts["last_id"].get(channel.dialog_of(conv)) != mid)
    distinct_ids = len({mid for _conv, mid in db["ids"]})
    span = float(db["last"]) - t_load if db["last"] else None

    print(
        f"\ndrain: {'done' if done else 'NOT done'} {drain_s:.1f} s after the load ended"
        + (f"; last reply {span:.1f} s after the load began" if span else "")
    )
    if span:
        print(f"  worker throughput ≈ {total / max(0.001, span):.0f} replies/s over the run")
    print(
        f"  fake API: {at_fake['sends']} reply sends for {total} {unit}s"
        + (f" (+ {at_fake['media']} picture sends)" if at_fake["media"] else "")
        + f"; dialogs with exactly one reply {at_fake['once']}, with none {len(at_fake['zero'])}, "
        f"with more than one {len(at_fake['many'])}"
    )
    if at_fake["zero"]:
        print(f"  without a reply: {', '.join(at_fake['zero'][:10])}{' ...' if len(at_fake['zero']) > 10 else ''}")
    if at_fake["many"]:
        shown = ", ".join(f"{d}×{counts['replies'][d]}+{counts['media'][d]}" for d in at_fake["many"][:10])
        print(f"  duplicated (texts+pictures): {shown}")
    if at_fake["strangers"]:
        print(f"  replies to {len(at_fake['strangers'])} dialogs the bench never wrote from")
    if counts["refused"]:
        print(f"  refused by the fake: {dict(counts['refused'])}")
    if counts["other"]:
        print(f"  other methods: {dict(counts['other'])}")
    print(
        f"  database: {db['customers']} customer messages in {db['conversations']} conversations "
        f"({db['accounts']} channel account{'s' if db['accounts'] != 1 else ''}); "
        f"with one sent reply {db['once']}, with none {db['without']}, "
        f"with more than one {db['many']}, reply not sent {db['unsent']}; bot replies by state "
        f"{ {k or '-': v for k, v in sorted(db['states'].items())} }, {db['retried']} sent after a retry"
    )
    print(
        f"  outgoing ids: {len(db['ids'])} sent replies carry {distinct_ids} distinct ids "
        f"(they repeat across {'portals' if channel.name == 'bitrix24' else 'chats'}); "
        f"{mismatched} differ from the id the fake gave"
    )

    print(f"\nload average before /health: {_load()}")
    get = {"port": port, "method": "GET", "path": "/health"}
    if args.serial:
        print_run("GET /health one at a time", drive(bodies=[None] * args.serial, concurrency=1, processes=1, **get))
    health = drive(bodies=[None] * args.events, concurrency=args.concurrency, processes=args.load_processes, **get)
    print_run("GET /health", health)
    print(f"load average after: {_load()}")

    # Lost: never recorded, or recorded without a reply or with one never sent.
    db_lost = (total - db["customers"]) + db["without"] + db["unsent"]
    runs = [r for r in (serial, closed, open_run) if r]
    acked = sum(r["statuses"].get("200", 0) for r in runs)
    non_200 = Counter()
    for r in runs:
        non_200.update({k: v for k, v in r["statuses"].items() if k != "200"})
    share = closed["rps"] / health["rps"]
    targets = [
        (
            f"every {unit} acknowledged with 200",
            f"{acked}/{total} ({sum(non_200.values())} non-200{': ' + str(dict(non_200)) if non_200 else ''})",
            acked == total,
        ),
        (
            f"throughput ≥ {TARGET_THROUGHPUT_SHARE:.0%} of /health's",
            f"{closed['rps']:.0f} vs {health['rps']:.0f} req/s ({share:.0%})",
            share >= TARGET_THROUGHPUT_SHARE,
        ),
        (
            f"closed loop p50 / p99 ({args.concurrency} conn.)",
            f"{closed['p50']:.1f} / {closed['p99']:.1f} ms (/health {health['p50']:.1f} / {health['p99']:.1f})",
            None,
        ),
    ]
    if open_run:
        targets.append(
            (
                f"open loop p99 < {TARGET_OPEN_P99_MS:.0f} ms",
                f"{open_run['p99']:.1f} ms at {open_run['rps']:.0f}/s (p50 {open_run['p50']:.1f})",
                open_run["p99"] < TARGET_OPEN_P99_MS,
            )
        )
    targets += [
        (
            f"one reply per {unit} (fake API)",
            f"{at_fake['once']}/{total} once, {len(at_fake['zero'])} lost, {len(at_fake['many'])} duplicated",
            at_fake["once"] == total and not at_fake["strangers"] and not counts["refused"],
        ),
        (
            f"one reply per {unit} (database)",
            f"{db['once']}/{total} sent once, {db_lost} lost, {db['many']} duplicated",
            db["customers"] == total and db["once"] == total and not db["many"] and not mismatched,
        ),
    ]
    print(
        f"\n== {channel.name}: {total} {unit}s ({len(serial_bodies)} serial + {len(bodies)} at "
        f"{args.concurrency} connections + {len(open_bodies)} open loop)"
    )
    print_targets([(channel.name, *t) for t in targets])
    if closed["p99"] >= TARGET_OPEN_P99_MS:
        little = args.concurrency / closed["rps"] * 1000
        print(
            f"note: with {args.concurrency} requests always in flight, Little's law puts the closed loop's mean "
            f"latency at {args.concurrency} / {closed['rps']:.0f} per s = {little:.0f} ms whatever the code does; "
            f"p99 < {TARGET_OPEN_P99_MS:.0f} ms there needs > {args.concurrency / TARGET_OPEN_P99_MS * 1000:.0f} req/s"
        )
    return {"targets": targets, "ok": all(met is not False for *_x, met in targets)}


# --- main ------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--channel", choices=(*CHANNELS, "both"), default="both", help="the channel to drive (default both, in turn)"
    )
    parser.add_argument("--events", type=int, default=2000, help="events (updates) under load (default 2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="connections in flight (default 50)")
    parser.add_argument("--serial", type=int, default=100, help="events and /health requests sent one at a time first")
    parser.add_argument("--gunicorn-workers", type=int, default=8, help="gunicorn workers (default 8)")
    parser.add_argument(
        "--gunicorn-threads", type=int, default=1, help="threads per worker (default 1: sync workers; more: gthread)"
    )
    parser.add_argument("--qclusters", type=int, default=2, help="qcluster processes, as worker nodes (default 2)")
    parser.add_argument(
        "--q-workers",
        type=int,
        default=1,
        help="workers of each qcluster (default 1, Q_WORKERS: two nodes of one worker on this machine's 2 cores)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=19,
        help="niceness of the qclusters (default 19, as `make run`: on one machine the worker yields to the web "
        "server in a burst, so every event is acknowledged at once and the replies follow; 0 runs both alike)",
    )
    parser.add_argument("--load-processes", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument(
        "--open-events", type=int, default=1000, help="events then sent open loop (default 1000; 0: none)"
    )
    parser.add_argument(
        "--open-share",
        type=float,
        default=0.5,
        help="open-loop rate as a share of the closed-loop throughput (default 0.5)",
    )
    parser.add_argument("--portals", type=int, default=20, help="Bitrix24 portals the events come from (default 20)")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds to wait for the replies")
    args = parser.parse_args()
    if args.events < 1 or args.concurrency < 1 or args.qclusters < 1:
        parser.error("--events, --concurrency and --qclusters must be at least 1")

    db_url = os.environ.get("BENCH_WEBHOOK_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_WEBHOOK_REDIS_URL", DEFAULT_REDIS_URL)
    ensure_database(db_url)
    base_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "Q_WORKERS": str(args.q_workers),
        "LLM_PROVIDER": "",
        "STT_PROVIDER": "",
    }
    base_env.pop("CHANNEL_SENDERS", None)  # the default: every channel through its own sender

    print(f"database {urlsplit(db_url).path.lstrip('/')}, redis {redis_url}")
    t = time.perf_counter()
    manage(base_env, "migrate", "--noinput")
    manage(base_env, "load_demo", "--if-empty")
    print(f"migrate + load_demo: {time.perf_counter() - t:.1f} s")

    names = CHANNELS if args.channel == "both" else (args.channel,)
    channels = {"bitrix24": lambda: Bitrix24Channel(args.portals), "telegram": TelegramChannel}
    results = {}
    try:
        for name in names:
            results[name] = run_channel(channels[name](), args, base_env, db_url, redis_url)
    except KeyboardInterrupt:
        print("\ninterrupted")
        return 130

    print(
        f"\n===== summary: {os.cpu_count()} CPUs, gunicorn {args.gunicorn_workers} workers × "
        f"{args.gunicorn_threads} threads, {args.qclusters} qcluster{'s' if args.qclusters != 1 else ''} × "
        f"{args.q_workers} workers at nice "
        f"{args.worker_nice}, {args.serial} serial + {args.events} closed loop + {args.open_events} open loop "
        f"per channel"
    )
    if "telegram" in results:
        print(
            f"Telegram: TELEGRAM_RATE_PER_BOT_PER_S={TELEGRAM_BENCH_RATE_PER_BOT} (Telegram's real ~30/s per bot "
            "would make the drain take minutes and is not what is measured)"
        )
    if "bitrix24" in results:
        print(f"Bitrix24: {args.portals} portals on the webhook's token, B24_RATE_LIMIT_PER_S=0")
    print_targets([(name, *t) for name, r in results.items() for t in r["targets"]])
    missed = [f"{name}: {t[0]}" for name, r in results.items() for t in r["targets"] if t[2] is False]
    if missed:
        print("MISSED: " + "; ".join(missed))
    trouble = {
        f"{name}/{log}": len(lines) for name, r in results.items() for log, lines in r["trouble"].items() if lines
    }
    if trouble:
        print(f"error lines in the services' logs: {trouble}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
