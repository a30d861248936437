"""Fault drill: the task worker killed with SIGKILL mid-queue, and restarted.

    .venv/bin/python bench/drill_worker_kill.py [--backlog 500] [--lease 30]

Starts its own stack as processes (bench/stack.py's DrillStack: a private
PostgreSQL cluster and Redis, gunicorn, two qclusters of one worker at nice 19,
the fake Bitrix24 REST and Bot API), both channels at once. Builds a backlog:
`--backlog` events (half Bitrix24, half Telegram, each its own dialog) are
posted while no worker runs, so every message is recorded and its task waits
in Redis. Then the qclusters start, and mid-queue:

1. when `--first-kill` of the backlog is answered, qcluster1's worker process
   gets SIGKILL (django-q's sentinel starts a new one: the task it was running
   is gone from the queue);
2. when `--second-kill` is answered, every process of qcluster2 gets SIGKILL
   (a node dying: its worker's task and what its pusher had taken from Redis
   are gone), and qcluster2 is started again a second later.

It waits for every message to have its reply (the sweep answers the messages
whose task was lost, REPLY_SWEEP_AFTER_S after they arrived), then checks at
the fake APIs (reply sends per dialog) and in the database (delivery states)
that every event was answered exactly once. REPLY_SEND_LEASE_S is `--lease`
(default 30 s instead of 180 s), so a send cut short by the kill is taken over
within the drill's time. Exits 1 when an event is lost or answered twice.
"""

import argparse
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.stack import (
    DrillStack,
    Load,
    add_drill_arguments,
    drill_verdict,
    load_average,
    once_rows,
    print_once,
    print_run,
    process_children,
    queue_length,
)


def total_replies(stack: DrillStack) -> int:
    return sum(sum(stack.counts(name)["replies"].values()) for name in stack.channels)


def worker_of(stack: DrillStack, service: str) -> tuple[int, list[int]]:
    """(the worker's pid, the sentinel's children) of a qcluster: its main process has one child, the sentinel,
    whose children are the workers (spawned first, so the lowest pids), the monitor and the pusher."""
    children = process_children()
    main = stack.services.procs[service].pid
    if not children.get(main):
        raise RuntimeError(f"{service} has no sentinel process")
    kids = children.get(children[main][0], [])
    if len(kids) < 3:
        raise RuntimeError(f"{service}'s sentinel has {len(kids)} children, not workers + monitor + pusher")
    return kids[0], kids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=500, help="events posted before any worker runs (500)")
    parser.add_argument("--first-kill", type=float, default=0.2, help="share answered at the worker's kill (0.2)")
    parser.add_argument("--second-kill", type=float, default=0.5, help="share answered at the node's kill (0.5)")
    parser.add_argument("--lease", type=int, default=30, help="REPLY_SEND_LEASE_S for the drill (30; default 180)")
    add_drill_arguments(parser, drain_timeout=170)
    args = parser.parse_args()
    per_channel = max(1, args.backlog // 2)
    backlog = per_channel * 2

    with DrillStack(
        "worker-kill",
        events=per_channel,
        portals=args.portals,
        qclusters=2,
        worker_nice=args.worker_nice,
        env={"REPLY_SEND_LEASE_S": str(args.lease)},
    ) as stack:
        stack.keep_logs = args.keep_logs
        stack.start_web()
        print(stack.describe())
        print(f"REPLY_SEND_LEASE_S={args.lease} (default 180), REPLY_SWEEP_AFTER_S default (60); {load_average()}")

        # The backlog: recorded, its tasks in Redis, no worker yet.
        requests = stack.events_of(0, per_channel)
        run = Load(stack.port, requests, concurrency=20).result()
        print_run(f"\nthe backlog: {backlog} events while no worker runs", run)
        acked = [r.key for r in run["results"] if r.status == 200]
        expected = stack.dialogs(acked)
        posted = stack.dialogs(r.key for r in requests)
        print(f"  tasks waiting in Redis: {queue_length(stack.redis_url)}")

        # The workers, and the kills mid-queue.
        t0 = time.time()
        stack.start_workers()
        print(f"\nqclusters started at +0.0 s; {load_average()}")
        kills = []
        first_at = max(1, int(args.first_kill * backlog))
        second_at = max(first_at + 1, int(args.second_kill * backlog))
        deadline = t0 + 90
        while len(kills) < 2 and time.time() < deadline:
            answered = total_replies(stack)
            if not kills and answered >= first_at:
                pid, kids = worker_of(stack, "qcluster1")
                os.kill(pid, signal.SIGKILL)
                kills.append(("qcluster1's worker", time.time(), answered, [pid]))
                print(
                    f"  +{time.time() - t0:5.1f} s: {answered}/{backlog} answered: SIGKILL to qcluster1's worker "
                    f"(pid {pid}; its sentinel's children {kids})"
                )
            elif len(kills) == 1 and answered >= second_at:
                pids = stack.services.kill("qcluster2")
                kills.append(("every process of qcluster2", time.time(), answered, pids))
                print(
                    f"  +{time.time() - t0:5.1f} s: {answered}/{backlog} answered: SIGKILL to every process of "
                    f"qcluster2 (pids {pids})"
                )
                time.sleep(1)
                stack.services.restart("qcluster2")
                print(f"  +{time.time() - t0:5.1f} s: qcluster2 started again")
            time.sleep(0.05)
        if len(kills) < 2:
            print(f"  the backlog was not answered far enough in 90 s for both kills ({total_replies(stack)})")

        print(f"\nthe drain ({load_average()}):")
        drained = stack.wait_answered(expected, args.drain_timeout, since=t0)
        # A late duplicate (a sweep, a retry, a send taken over after the lease) would come after: a moment.
        time.sleep(5)
        found = stack.check_replies(expected, posted)
        waiting = queue_length(stack.redis_url)
        retries = stack.pending_retries()

        print(
            f"\ndrain {'done' if drained['done'] else 'NOT done'} {drained['at'] - t0:.1f} s after the workers "
            f"started; tasks left in the queue {waiting}, one-off retries scheduled {retries}"
        )
        reply_times = sorted(t for name in stack.channels for t in stack.counts(name)["reply_at"].values())
        if reply_times:
            buckets = Counter(int((t - t0) // 10) * 10 for t in reply_times)
            print(
                "  replies by time since the workers started: "
                + ", ".join(f"{b}–{b + 10} s: {n}" for b, n in sorted(buckets.items()))
            )
            for what, at, answered, _pids in kills:
                later = sum(1 for t in reply_times if t > at)
                print(
                    f"  after the kill of {what} (+{at - t0:.1f} s, {answered} answered then): {later} replies, "
                    f"the last {reply_times[-1] - at:.1f} s after it"
                )
        for name, found_one in found.items():
            print_once(name, found_one)
        stack.explain(found, t0)
        reincarnated = [
            line
            for service in ("qcluster1", "qcluster2")
            for line in stack.services.tail(service, 100000).splitlines()
            if "CRITICAL django-q" in line  # the sentinel's "reincarnated ... after sudden death" (translated)
        ]
        for line in reincarnated:
            print(f"  log: {line[:200]}")
        print(f"  services started again by the drill: {dict(stack.services.restarts) or 'none'}")
        print("\nerror lines in the services' logs:")
        trouble = stack.print_trouble()
        if not trouble:
            print("  none")

        rows = [
            (
                "both",
                "every backlog event acknowledged (200)",
                f"{len(acked)}/{backlog} ({dict(run['statuses'])})",
                len(acked) == backlog,
            ),
            ("both", "kills made mid-queue", f"{len(kills)} of 2", len(kills) == 2),
        ]
        rows += once_rows(found, "0 lost, 0 duplicated")
        rows.append(("both", "time to drain the backlog", f"{drained['at'] - t0:.1f} s", None))
        return drill_verdict(
            stack,
            f"worker kill drill: {backlog} events backlogged, 2 kills ({load_average()})",
            rows,
        )


if __name__ == "__main__":
    sys.exit(main())
