"""The operator inbox at size: 10,000 dialogs with 200,000 messages on PostgreSQL.

    .venv/bin/python bench/inbox.py [--dialogs 10000] [--messages 200000] [--rounds 40]

Fills its own database (storebot_bench_inbox; DATABASE_URL wins) with dialogs of every channel and state,
a few hundred waiting for an operator, and messages between customers, the bot and operators, then
times, through Django's test client as an operator's browser asks them: the list page, the list's
poll (its rows), a dialog page, and a dialog's poll for new messages, each --rounds times. Prints
p50/p95/max and the SQL statements per request, against the target p95 < 300 ms for the list. A
catalog that already holds the asked numbers is kept (--refill fills again).
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.database import SqlMeter, ensure_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storebot_bench_inbox"
TARGET_MS = 300
PREFIX = "bench-inbox-"


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def fill(n_dialogs: int, n_messages: int, rng: random.Random) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from conversations.models import Channel, Conversation, Message
    from conversations.services import account_for

    Message.objects.filter(conversation__external_id__startswith=PREFIX).delete()
    Conversation.objects.filter(external_id__startswith=PREFIX).delete()
    operators = [
        get_user_model().objects.get_or_create(username=f"bench-op-{n}", defaults={"is_staff": True})[0]
        for n in range(5)
    ]
    accounts = {c: account_for(c) for c in (Channel.TELEGRAM, Channel.BITRIX24)}
    now = timezone.now()
    started = time.perf_counter()
    dialogs = []
    for i in range(n_dialogs):
        channel = rng.choice(list(accounts))
        kind = rng.random()
        state, operator, handed = Conversation.State.BOT, None, None
        if kind < 0.03:  # waiting for an operator
            state, handed = Conversation.State.OPERATOR, now - timedelta(minutes=rng.randint(1, 600))
        elif kind < 0.08:
            state, operator = Conversation.State.OPERATOR, rng.choice(operators)
            handed = now - timedelta(minutes=rng.randint(1, 6000))
        elif kind < 0.5:
            state = Conversation.State.CLOSED
        dialogs.append(
            Conversation(
                channel=channel,
                account=accounts[channel],
                external_id=f"{PREFIX}{i}",
                customer_name=f"Покупатель {i}",
                customer_external_id=str(100000 + i),
                state=state,
                assigned_operator=operator,
                handed_off_at=handed,
                last_message_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 60)),
            )
        )
    Conversation.objects.bulk_create(dialogs, batch_size=2000)
    dialogs = list(Conversation.objects.filter(external_id__startswith=PREFIX).order_by("id"))
    texts = ["Есть икра кеты?", "Сколько стоит доставка?", "Позовите оператора", "Спасибо!", "А креветки?"]
    batch = []
    per_dialog = max(1, n_messages // n_dialogs)
    for dialog in dialogs:
        moment = dialog.last_message_at - timedelta(minutes=per_dialog * 3)
        for k in range(per_dialog):
            moment += timedelta(minutes=rng.randint(1, 3))
            customer = k % 2 == 0
            author = Message.Author.CUSTOMER if customer else rng.choice([Message.Author.BOT, Message.Author.OPERATOR])
            batch.append(
                Message(
                    conversation=dialog,
                    channel=dialog.channel,
                    direction=Message.Direction.IN if customer else Message.Direction.OUT,
                    author=author,
                    text=rng.choice(texts) if customer else "Вот что есть в наличии: …",
                    external_id=f"{dialog.pk}-{k}" if customer else "",
                    delivery_state="" if customer else Message.Delivery.SENT,
                    created_at=moment,
                )
            )
        if len(batch) >= 20_000:
            Message.objects.bulk_create(batch, batch_size=5000)
            batch = []
    Message.objects.bulk_create(batch, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_conversation")
        cursor.execute("ANALYZE conversations_message")
    seconds = time.perf_counter() - started
    print(f"filled {len(dialogs):,} dialogs and {per_dialog * len(dialogs):,} messages in {seconds:.1f} s")


def timed(client, url: str, rounds: int, meter: SqlMeter) -> tuple[list[float], float]:
    from django.db import connection

    client.get(url)  # warm
    times, statements = [], []
    for _ in range(rounds):
        meter.reset()
        with connection.execute_wrapper(meter):
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        statements.append(meter.count)
    return times, statistics.mean(statements)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogs", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--refill", action="store_true")
    args = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql") or "bench" not in unquote(urlsplit(url).path):
        print(f"bench/inbox.py fills a PostgreSQL bench database; DATABASE_URL is {url!r}.", file=sys.stderr)
        return 2
    ensure_database(url)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client

    from conversations.models import Conversation, Message
    from inbox import roles

    settings.ALLOWED_HOSTS = ["*"]
    # The pages name their static files; the bench times the pages, not a collected manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    call_command("migrate", verbosity=0)
    have = Conversation.objects.filter(external_id__startswith=PREFIX).count()
    have_messages = Message.objects.filter(conversation__external_id__startswith=PREFIX).count()
    if args.refill or have != args.dialogs or have_messages < args.messages * 0.9:
        fill(args.dialogs, args.messages, random.Random(args.seed))
    else:
        print(f"kept {have:,} dialogs and {have_messages:,} messages")
    operator, _ = get_user_model().objects.get_or_create(username="bench-olga", defaults={"is_staff": True})
    operator.groups.add(Group.objects.get(name=roles.GROUP_NAMES[roles.OPERATORS]))
    client = Client()
    client.force_login(operator)
    dialog = Conversation.objects.filter(external_id__startswith=PREFIX, state="operator").order_by("id").first()
    last = dialog.messages.order_by("-id").first()
    meter = SqlMeter()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; {args.rounds} rounds each")
    rows = []
    ok = True
    for name, path, target in (
        ("list page", "/inbox/", TARGET_MS),
        ("list poll (rows)", "/inbox/rows/", TARGET_MS),
        ("list, waiting only", "/inbox/rows/?show=waiting", TARGET_MS),
        ("list, search «креветки»", "/inbox/rows/?q=креветки", None),
        ("dialog page", f"/inbox/{dialog.pk}/", None),
        ("dialog poll (nothing new)", f"/inbox/{dialog.pk}/updates/?after={last.pk}", None),
    ):
        times, statements = timed(client, path, args.rounds, meter)
        verdict = ""
        if target is not None:
            met = p(times, 95) < target
            ok &= met
            verdict = f"target p95 < {target} ms: {'met' if met else 'MISSED'}"
        rows.append((name, p(times, 50), p(times, 95), max(times), statements, verdict))
    print(f"{'request':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'SQL':>5}")
    for name, p50, p95, top, statements, verdict in rows:
        print(f"{name:28} {p50:8.1f} {p95:8.1f} {top:8.1f} {statements:5.0f}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
