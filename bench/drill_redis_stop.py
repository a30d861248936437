"""Fault drill: Redis (the task queue and the cache) stopped under load, then started again.

    .venv/bin/python bench/drill_redis_stop.py [--rate 50] [--seconds 30] [--fault-at 8] [--down 15]

Starts its own stack as processes (bench/stack.py's DrillStack: a private
PostgreSQL cluster and Redis with its append-only file on, as
docker-compose.yml runs it; gunicorn with 8 sync workers, two qclusters of one
worker at nice 19, the fake Bitrix24 REST and Bot API), both channels at once,
and posts `--rate` events a second for `--seconds` seconds in an open loop
(the channels take turns, each event its own dialog). `--fault-at` seconds in,
Redis is stopped (SIGTERM: it writes its AOF and exits, as `docker compose
stop` would) and started again `--down` seconds later on the same port and
files; the load goes on throughout. A service that exits meanwhile is started
again, as a restart policy would, and counted. What was not answered 200 is
posted again after its Retry-After, up to 3 times, as Telegram would.

Then it waits until every event answered 200 has its reply and checks, at the
fake APIs (reply sends per dialog) and in the database (delivery states), that
each was answered exactly once. It prints the statuses second by second, the
backlog when Redis came back (events acknowledged by then and not answered
yet) and the time from Redis back to the last reply of that backlog. Targets:
every event answered 200 (a spooled one is answered 200 too); every event
answered exactly once; the backlog answered within `--recovery-target`
seconds (60) of Redis returning. Exits 1 when one is missed.
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.stack import (
    add_drill_arguments,
    add_outage_arguments,
    drill_verdict,
    final_statuses,
    load_average,
    load_with_outage,
    once_rows,
    print_once,
    print_run,
    print_timeline,
    queue_length,
    redeliver,
    warmed_up_stack,
)

WARMUP = 10  # events of each channel one at a time before the load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_outage_arguments(parser, service="Redis", seconds=30, fault_at=8, down=15)
    parser.add_argument(
        "--recovery-target", type=float, default=60, help="seconds from Redis back to the backlog's last reply (60)"
    )
    add_drill_arguments(parser, drain_timeout=150)
    args = parser.parse_args()
    per_channel = max(1, int(args.rate * args.seconds / 2))

    with warmed_up_stack("redis-stop", args, warmup=WARMUP, per_channel=per_channel) as (stack, warm):
        requests = stack.events_of(WARMUP, per_channel)
        print(
            f"\nload: {len(requests)} events at {args.rate:.0f}/s open loop for {args.seconds:.0f} s; Redis stopped "
            f"at +{args.fault_at:.0f} s for {args.down:.0f} s; {load_average()}"
        )
        outage = load_with_outage(
            stack, requests, args, what="Redis (SIGTERM)", stop=stack.redis.stop, start=stack.redis.start
        )
        t0, t_stop, t_start, t_back, took = outage.t0, outage.t_stop, outage.t_start, outage.t_up, outage.took_start
        waiting_at_back = queue_length(stack.redis_url)
        answered_at_back = {name: set(stack.counts(name)["replies"]) for name in stack.channels}
        print(
            f"  +{t_start - t0:5.1f} s: Redis started, answering in {took:.2f} s; {waiting_at_back} tasks in its "
            f"queue (kept in the AOF); {sum(len(v) for v in answered_at_back.values())} events answered by then"
        )
        run = outage.load.result(during=stack.services.supervise)
        print_run("\nthe load", run, closed_loop=False)
        first = run["results"]
        print_timeline(first, t0, "  statuses by the second each event was due (since the load began):")
        refused_first = [r for r in first if r.status != 200]
        if refused_first:
            print(
                f"  not 200 at the first try: {len(refused_first)} "
                f"({dict(Counter(str(r.status) for r in refused_first))}), "
                f"Retry-After {dict(Counter(r.retry_after for r in refused_first))}"
            )
        print(f"  events in SPOOL_DIR: {stack.spool_by_folder() or 0}")
        rounds = redeliver(stack.port, requests, first, during=stack.services.supervise)
        for n, results in enumerate(rounds, 1):
            print(f"  redelivery {n}: {len(results)} events, {dict(Counter(str(r.status) for r in results))}")

        final = final_statuses(warm, first, rounds)
        acked = [key for key, status in final.items() if status == 200]
        expected = stack.dialogs(acked)
        posted = stack.dialogs(final)
        # The backlog at Redis's return: acknowledged events that came before it and were not answered by then.
        before_back = stack.dialogs(r.key for r in warm["results"] + first if r.status == 200 and r.began < t_back)
        backlog = {name: dialogs - answered_at_back[name] for name, dialogs in before_back.items()}
        during = stack.dialogs(r.key for r in first if t_stop <= r.began < t_back)

        print(f"\nthe drain ({load_average()}):")
        drained = stack.wait_answered(expected, args.drain_timeout, since=t0)
        time.sleep(5)  # a late duplicate (a sweep, a retry) would come after the last first reply
        found = stack.check_replies(expected, posted)
        reply_at = {name: stack.counts(name)["reply_at"] for name in stack.channels}
        backlog_times = [reply_at[name].get(d) for name, dialogs in backlog.items() for d in dialogs]
        backlog_size = len(backlog_times)
        backlog_answered = [t for t in backlog_times if t is not None]
        recovery = max(backlog_answered) - t_back if backlog_answered else None
        all_times = [t for times in reply_at.values() for t in times.values()]
        within = sum(1 for t in backlog_answered if t - t_back <= args.recovery_target)

        print(
            f"\ndrain {'done' if drained['done'] else 'NOT done'} {drained['at'] - t_back:.1f} s after Redis was "
            f"back; tasks in the queue {queue_length(stack.redis_url)}, one-off retries scheduled "
            f"{stack.pending_retries()}"
        )
        print(
            f"  events while Redis was down: {sum(len(v) for v in during.values())}; the backlog when it came back: "
            f"{backlog_size} acknowledged events without a reply, {len(backlog_answered)} answered since, "
            f"{within} within {args.recovery_target:.0f} s"
        )
        if backlog_answered:
            buckets = Counter(int((t - t_back) // 10) * 10 for t in backlog_answered)
            print(
                "  the backlog's replies by time since Redis was back: "
                + ", ".join(f"{b}–{b + 10} s: {n}" for b, n in sorted(buckets.items()))
            )
        if recovery is not None:
            print(f"  from Redis back to the backlog's last reply: {recovery:.1f} s")
        if all_times:
            print(f"  from Redis back to the last reply of all: {max(all_times) - t_back:.1f} s")
        for name, found_one in found.items():
            print_once(name, found_one)
        stack.explain(found, t0)
        print(f"  services started again by the drill: {dict(stack.services.restarts) or 'none'}")
        print("\nerror lines in the services' logs:")
        if not stack.print_trouble():
            print("  none")

        statuses = Counter(str(r.status) for r in warm["results"] + first)
        non_200 = {k: v for k, v in statuses.items() if k != "200"}
        complete = backlog_size == len(backlog_answered)
        rows = [
            (
                "both",
                "every event answered 200 (or spooled)",
                f"{statuses.get('200', 0)}/{len(warm['results']) + len(first)} at the first try"
                + (f" ({non_200})" if non_200 else ""),
                not non_200,
            ),
            *once_rows(found, "every event answered once"),
            (
                "both",
                f"backlog answered ≤ {args.recovery_target:.0f} s after Redis up",
                (f"{recovery:.1f} s" if recovery is not None else "nothing answered")
                + f" for {backlog_size} events"
                + ("" if complete else f" ({backlog_size - len(backlog_answered)} never)"),
                complete and (recovery is None or recovery <= args.recovery_target),
            ),
        ]
        return drill_verdict(
            stack,
            f"Redis stop drill: {len(requests)} events at {args.rate:.0f}/s, Redis down {t_back - t_stop:.1f} s "
            f"({load_average()})",
            rows,
        )


if __name__ == "__main__":
    sys.exit(main())
