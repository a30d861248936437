"""Fault drill: PostgreSQL restarted while the webhooks take events.

    .venv/bin/python bench/drill_pg_restart.py [--rate 50] [--seconds 20] [--fault-at 6] [--down 5]

Starts its own stack as processes (bench/stack.py's DrillStack: a private
PostgreSQL cluster and Redis, gunicorn with 8 sync workers, two qclusters of
one worker at nice 19, the fake Bitrix24 REST and Bot API), both channels at
once, and posts `--rate` events a second for `--seconds` seconds in an open
loop (the channels take turns: half Bitrix24, half Telegram, each event its
own dialog). `--fault-at` seconds in, the private PostgreSQL is stopped
(`pg_ctl stop -m fast`: its sessions are ended, as in a restart or a
fail-over), stays down `--down` seconds and is started again; the load goes
on throughout. What was not answered 200 is posted again after its
Retry-After, up to 3 times, as Telegram would (`--no-redeliver`: not).

Then it waits until every event that was answered 200 has its reply (the
sweep answers those whose task failed, REPLY_SWEEP_AFTER_S after they came)
and checks, at the fake APIs (reply sends per dialog) and in the database
(delivery states), that each was answered exactly once. It prints the
statuses second by second, the 503s and what the services logged. Targets: no
500 (nor any 5xx but 503, nor a dropped connection); every event answered 200
answered exactly once. Exits 1 when one is missed.
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
    redeliver,
    warmed_up_stack,
)

WARMUP = 10  # events of each channel one at a time before the load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_outage_arguments(parser, service="PostgreSQL", seconds=20, fault_at=6, down=5)
    parser.add_argument(
        "--mode", choices=("fast", "immediate"), default="fast", help="pg_ctl stop mode (fast; immediate: a crash)"
    )
    parser.add_argument("--no-redeliver", action="store_true", help="do not post refused events again")
    add_drill_arguments(parser, drain_timeout=150)
    args = parser.parse_args()
    per_channel = max(1, int(args.rate * args.seconds / 2))

    with warmed_up_stack("pg-restart", args, warmup=WARMUP, per_channel=per_channel) as (stack, warm):
        requests = stack.events_of(WARMUP, per_channel)
        print(
            f"\nload: {len(requests)} events at {args.rate:.0f}/s open loop for {args.seconds:.0f} s; PostgreSQL "
            f"stopped ({args.mode}) at +{args.fault_at:.0f} s for {args.down:.0f} s; {load_average()}"
        )
        outage = load_with_outage(
            stack,
            requests,
            args,
            what=f"PostgreSQL ({args.mode})",
            stop=lambda: stack.pg.stop(args.mode),
            start=stack.pg.start,
        )
        t0, t_stop, t_up = outage.t0, outage.t_stop, outage.t_up
        print(
            f"  +{outage.t_start - t0:5.1f} s: PostgreSQL starting ... "
            f"accepting connections in {outage.took_start:.2f} s"
        )
        spooled_at_up = stack.spooled_files()
        run = outage.load.result(during=stack.services.supervise)
        print_run("\nthe load", run, closed_loop=False)
        first = run["results"]
        print_timeline(first, t0, "  statuses by the second each event was due (since the load began):")
        retry_after = Counter(r.retry_after for r in first if r.status == 503)
        refused_first = [r for r in first if r.status != 200]
        if refused_first:
            print(
                f"  not 200 at the first try: {len(refused_first)} "
                f"({dict(Counter(str(r.status) for r in refused_first))}), Retry-After {dict(retry_after)}; "
                f"the first at +{min(r.began for r in refused_first) - t0:.1f} s, "
                f"the last at +{max(r.began for r in refused_first) - t0:.1f} s"
            )
        print(f"  events in SPOOL_DIR when PostgreSQL was back: {spooled_at_up}, now: {stack.spool_by_folder()}")

        rounds = [] if args.no_redeliver else redeliver(stack.port, requests, first, during=stack.services.supervise)
        for n, results in enumerate(rounds, 1):
            print(f"  redelivery {n}: {len(results)} events, {dict(Counter(str(r.status) for r in results))}")

        final = final_statuses(warm, first, rounds)
        every = warm["results"] + first + [r for results in rounds for r in results]
        acked = [key for key, status in final.items() if status == 200]
        expected = stack.dialogs(acked)
        posted = stack.dialogs(final)

        print(f"\nthe drain ({load_average()}):")
        drained = stack.wait_answered(
            expected, args.drain_timeout, since=t0, extra=lambda: f"{stack.spooled_files()} events in the spool"
        )
        time.sleep(5)  # a late duplicate (a sweep, a retry) would come after the last first reply
        found = stack.check_replies(expected, posted)
        print(
            f"\ndrain {'done' if drained['done'] else 'NOT done'} {drained['at'] - t_up:.1f} s after PostgreSQL "
            f"was back; events in SPOOL_DIR {stack.spool_by_folder() or 0}, one-off retries scheduled "
            f"{stack.pending_retries()}"
        )
        for name, found_one in found.items():
            print_once(name, found_one)
        stack.explain(found, t0)
        print(f"  services started again by the drill: {dict(stack.services.restarts) or 'none'}")
        print("\nerror lines in the services' logs:")
        if not stack.print_trouble():
            print("  none")

        statuses = Counter(str(r.status) for r in every)
        server_errors = {k: v for k, v in statuses.items() if not k.isdigit() or (k >= "500" and k != "503")}
        first_503 = sum(1 for r in first if r.status == 503)
        never = len(posted["bitrix24"]) + len(posted["telegram"]) - len(acked)
        rows = [
            (
                "both",
                "0 × 500 (no 5xx but 503, no drops)",
                f"{sum(server_errors.values())} ({server_errors or 'none'}) in {len(every)} requests",
                not server_errors,
            ),
            (
                "both",
                "events answered 503 (first try)",
                f"{first_503} of {len(first)}" + ("; posted again" if rounds else ""),
                None,
            ),
            (
                "both",
                "events never answered 200",
                f"{never} of {len(final)}" + (" (after redelivery)" if rounds else ""),
                None,
            ),
        ]
        rows += once_rows(found, "every 200 answered once")
        rows.append(("both", "drain after PostgreSQL was back", f"{drained['at'] - t_up:.1f} s", None))
        return drill_verdict(
            stack,
            f"PostgreSQL restart drill: {len(requests)} events at {args.rate:.0f}/s, PostgreSQL down "
            f"{t_up - t_stop:.1f} s ({load_average()})",
            rows,
        )


if __name__ == "__main__":
    sys.exit(main())
