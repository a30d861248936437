"""3 marketplace accounts × 10,000 buyer messages polled from local stand-ins to the end, then answered.

    .venv/bin/python bench/marketplaces.py                 # PostgreSQL, the poller
    .venv/bin/python bench/marketplaces.py --sqlite        # SQLite (var/bench_marketplaces.sqlite3)
    .venv/bin/python bench/marketplaces.py --connectors    # the connectors alone, no database writes

Database `storebot_bench_marketplaces` on the local PostgreSQL by default
(`--database-url`; DATABASE_URL in the environment wins), created and
migrated; the bench's own accounts (channel account keys `bench-mp-*`) and
everything under them are deleted at the start. The demo catalog is loaded
(the answers search it); retrieval mode, no LLM. Cache and task queue are
Redis db 7 (`--redis-url`, flushed at the start: a db of the bench's own, so
no running worker takes its tasks), as deployed; `--redis-url none` runs
with a process-local cache and django-q's ORM broker in the bench database
(each queued answer is then an INSERT committed on its own).

The stand-ins (bench/marketplace_standins.py) run in a child process of
their own, so their CPU and memory are not counted here: Ozon, Wildberries
and Yandex Market, each `--messages` (10,000) buyer messages over `--chats`
(500) chats, made on the fly in the shapes the connectors read. The
marketplaces' own request rates (Ozon 5/s, WB 1/s, Market 2/s per account)
are lifted for the run (`--real-limits` keeps them): what is measured is
our side.

1. Poll: every account's chat stream is polled
   (`integrations.marketplaces.polling.poll(account, "chat")`) until a poll
   records nothing; it prints the messages recorded, the seconds, messages/s
   per marketplace and overall (target ≥ 500/s), peak RSS of this process
   (target < 300 MB), and duplicates: Message rows sharing conversation and
   external id (must be 0). Every buyer message must be stored once. The CPU
   seconds are this process's; "ORM SQL" counts the statements through
   Django's cursor (accept_incoming's PostgreSQL upsert runs on psycopg's own
   cursor and is not among them). `--profile N` prints the poll's N costliest
   calls.
2. Answer: `integrations.tasks.answer(message_id)`, the worker's task, in
   this process for `--answers` (500) customer messages of each account
   (spread over its chats; `--answers 0` all of them); prints the outcomes
   and answers/s. The stand-ins' recorded sends are compared with the bot's
   sent replies: each (chat, text) exactly as often as it was sent, none twice.
3. Poll again: our sends come back from the stand-ins as the seller's
   messages; nothing new may be recorded as the customer's.
4. Follow-ups (`--followups`, 50): that many chats of each marketplace get
   one more buyer message; the next poll records exactly those.

`--connectors` (also the fallback while integrations/marketplaces/polling.py
does not exist): the same against `connector_for(account).pages("chat",
cursor)` directly, with the cursor kept in memory: the pure fetch-and-parse
throughput, each answer sent with `connector.send` (a fixed text).

Exits 1 when a check fails or a target is missed.
"""

import argparse
import importlib.util
import os
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402
from bench.marketplace_standins import MARKETPLACES, OZON, PREFIXES, WB, YM, YM_BUSINESS_ID, StandIns  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/storebot_bench_marketplaces"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
SQLITE_URL = f"sqlite:///{ROOT / 'var' / 'bench_marketplaces.sqlite3'}"
KEY_PREFIX = "bench-mp-"
TARGET_PER_S = 500.0
TARGET_RSS_MB = 300.0
LABELS = {OZON: "Ozon", WB: "Wildberries", YM: "Yandex Market"}
MAX_POLLS = 1000


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def poller_available() -> bool:
    return importlib.util.find_spec("integrations.marketplaces.polling") is not None


def lift_rate_limits() -> None:
    """The marketplaces' request rates off for this process: the bench measures us, not Ozon's 5 a second."""
    from django.conf import settings

    from integrations.marketplaces.base import MarketplaceHttp

    original = MarketplaceHttp.limiter

    def unlimited(self, identity, *, rate, burst=1):
        return original(self, f"bench:{identity}", rate=1e6, burst=10**6)

    MarketplaceHttp.limiter = unlimited
    settings.YANDEX_MARKET_RATE_PER_S = 1e6


# --- the database side ------------------------------------------------------------------


def flush() -> str:
    from conversations.models import ChannelAccount, Conversation, Message

    accounts = ChannelAccount.objects.filter(key__startswith=KEY_PREFIX)
    messages = Message.objects.filter(conversation__account__in=accounts).count()
    # Messages point at each other (in_reply_to): the conversations go first, the accounts after.
    conversations, _ = Conversation.objects.filter(account__in=accounts).delete()
    count = accounts.count()
    accounts.delete()
    from django_q.models import OrmQ

    # The ORM broker's queue of an earlier run (the bench database's own).
    OrmQ.objects.all().delete()
    return f"{count} accounts, {messages:,} messages of an earlier run deleted" if count or conversations else "empty"


def create_accounts(url: str, marketplaces) -> dict:
    from conversations.models import ChannelAccount
    from integrations.marketplaces.models import MarketplaceAccount, Mode

    accounts = {}
    for marketplace in marketplaces:
        channel_account = ChannelAccount.objects.create(
            channel=marketplace, key=f"{KEY_PREFIX}{marketplace.replace('_', '-')}", name=f"Bench {LABELS[marketplace]}"
        )
        accounts[marketplace] = MarketplaceAccount.objects.create(
            channel_account=channel_account,
            marketplace=marketplace,
            client_id="123456" if marketplace == OZON else "",
            business_id=YM_BUSINESS_ID if marketplace == YM else "",
            campaign_ids=[21001234] if marketplace == YM else [],
            token_type="personal" if marketplace == WB else "",
            api_key=f"bench-key-{marketplace}-0123456789",
            base_url=url + PREFIXES[marketplace],
            feedbacks_base_url=url + PREFIXES[WB] if marketplace == WB else "",
            chat_mode=Mode.AUTO,
        )
    return accounts


class PollerSide:
    """Polls through integrations.marketplaces.polling and answers with integrations.tasks.answer."""

    name = "poller (integrations.marketplaces.polling.poll)"

    def __init__(self, accounts: dict):
        from integrations.marketplaces import polling

        self.poll = polling.poll
        self.accounts = accounts
        # Seller messages a poll matched to a reply we sent (PollResult.own_sends).
        self.own_sends = Counter()

    def poll_to_end(self, marketplace: str) -> tuple[int, int, int]:
        """(items recorded, pages, polls) until a poll records nothing."""
        account = self.accounts[marketplace]
        recorded = pages = polls = 0
        while polls < MAX_POLLS:
            account.refresh_from_db()
            result = self.poll(account, "chat")
            polls += 1
            if getattr(result, "skipped", "") or getattr(result, "error", ""):
                raise RuntimeError(f"{marketplace} poll {polls}: skipped {result.skipped!r}, error {result.error!r}")
            # The brief named it items_recorded; polling.py's PollResult says recorded.
            new = getattr(result, "items_recorded", None)
            new = result.recorded if new is None else new
            recorded += new
            pages += getattr(result, "pages", 0)
            self.own_sends[marketplace] += getattr(result, "own_sends", 0)
            if not new:
                break
        return recorded, pages, polls

    def customer_messages(self, marketplace: str):
        from conversations.models import Message

        return Message.objects.filter(
            conversation__account=self.accounts[marketplace].channel_account,
            direction=Message.Direction.IN,
            author=Message.Author.CUSTOMER,
        )

    def counts(self, marketplace: str) -> dict:
        from django.db.models import Count

        from conversations.models import Message

        rows = Message.objects.filter(conversation__account=self.accounts[marketplace].channel_account)
        duplicates = (
            rows.exclude(external_id="")
            .values("conversation_id", "external_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count()
        )
        return {
            "customer": self.customer_messages(marketplace).count(),
            "all": rows.count(),
            "conversations": rows.values("conversation_id").distinct().count(),
            "duplicates": duplicates,
        }

    def answer(self, marketplace: str, sample: int) -> tuple[Counter, float, int]:
        from integrations.tasks import answer

        ids = self._sample(marketplace, sample)
        outcomes = Counter()
        started = time.perf_counter()
        for message_id in ids:
            outcomes[answer(message_id)] += 1
        return outcomes, time.perf_counter() - started, len(ids)

    def _sample(self, marketplace: str, sample: int) -> list[int]:
        """`sample` customer messages spread over the chats (round robin over the conversations), all for 0."""
        rows = list(self.customer_messages(marketplace).order_by("id").values_list("conversation_id", "id"))
        if not sample or sample >= len(rows):
            return [message_id for _conversation, message_id in rows]
        by_conversation = defaultdict(list)
        for conversation_id, message_id in rows:
            by_conversation[conversation_id].append(message_id)
        picked, round_ = [], 0
        while len(picked) < sample:
            for ids in by_conversation.values():
                if round_ < len(ids) and len(picked) < sample:
                    picked.append(ids[round_])
            round_ += 1
        return sorted(picked)

    def sent_replies(self, marketplace: str) -> Counter:
        """(chat id, text) of every bot reply recorded as sent, as the stand-in must have received them."""
        from conversations.models import Message

        rows = Message.objects.filter(
            conversation__account=self.accounts[marketplace].channel_account,
            direction=Message.Direction.OUT,
            delivery_state=Message.Delivery.SENT,
        ).values_list("conversation__external_id", "conversation__channel_data", "text")
        return Counter((str((data or {}).get("thread_id") or external_id), text) for external_id, data, text in rows)


class ConnectorSide:
    """The connectors alone: the cursor and the dedupe in memory, sends with a fixed text."""

    name = "connectors only (connector_for(account).pages, no database writes)"

    def __init__(self, accounts: dict):
        from integrations.marketplaces.connectors import connector_for

        self.accounts = accounts
        self.connectors = {m: connector_for(account) for m, account in accounts.items()}
        self.cursors = {m: {} for m in accounts}
        self.seen = {m: set() for m in accounts}
        self.customer = {m: [] for m in accounts}  # (chat, message id, context) of each customer item
        self.items = Counter()
        self.repeats = Counter()
        self.sent = {m: Counter() for m in accounts}
        # Seller messages read (our sends coming back; the poller would match them).
        self.own_sends = Counter()

    def poll_to_end(self, marketplace: str) -> tuple[int, int, int]:
        connector = self.connectors[marketplace]
        recorded = pages = polls = 0
        while polls < MAX_POLLS:
            polls += 1
            new = 0
            more = False
            for page in connector.pages("chat", self.cursors[marketplace]):
                pages += 1
                for item in page.items:
                    key = (item.thread_id, item.message_id)
                    if key in self.seen[marketplace]:
                        self.repeats[marketplace] += 1
                        continue
                    self.seen[marketplace].add(key)
                    new += 1
                    self.items[(marketplace, item.author)] += 1
                    if item.author == "seller":
                        self.own_sends[marketplace] += 1
                    if item.author == "customer" and item.needs_reply:
                        self.customer[marketplace].append((item.thread_id, item.message_id, item.context))
                self.cursors[marketplace] = page.cursor
                more = page.more
            recorded += new
            if not new and not more:
                break
        return recorded, pages, polls

    def counts(self, marketplace: str) -> dict:
        customer = self.items[(marketplace, "customer")]
        chats = {chat for chat, _id in self.seen[marketplace]}
        return {
            "customer": customer,
            "all": len(self.seen[marketplace]),
            "conversations": len(chats),
            "duplicates": 0,
            "read twice": self.repeats[marketplace],
        }

    def answer(self, marketplace: str, sample: int) -> tuple[Counter, float, int]:
        from integrations.marketplaces.base import Thread

        connector = self.connectors[marketplace]
        todo = self.customer[marketplace]
        if sample and sample < len(todo):
            step = len(todo) / sample
            todo = [todo[int(n * step)] for n in range(sample)]
        outcomes = Counter()
        started = time.perf_counter()
        for chat, message_id, context in todo:
            text = f"Здравствуйте! Да, есть в наличии. Ответ на сообщение {message_id[-6:]}."
            connector.send(Thread("chat", chat, dict(context)), text)
            self.sent[marketplace][(chat, text)] += 1
            outcomes["sent"] += 1
        return outcomes, time.perf_counter() - started, len(todo)

    def sent_replies(self, marketplace: str) -> Counter:
        return self.sent[marketplace]


# --- the run ---------------------------------------------------------------------------


def poll_all(side, marketplaces, title: str, *, profile: int = 0) -> dict:
    from django.db import connection

    from bench.database import SqlMeter

    print(f"\n== {title}")
    print(
        f"{'marketplace':15} {'recorded':>9} {'pages':>7} {'polls':>6} {'seconds':>8} {'msg/s':>8} "
        f"{'CPU s':>7} {'ORM SQL':>8} {'SQL s':>7}"
    )
    figures = {}
    total_items, total_seconds = 0, 0.0
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    meter = SqlMeter()
    for marketplace in marketplaces:
        meter.reset()
        cpu = time.process_time()
        started = time.perf_counter()
        with connection.execute_wrapper(meter):
            if profiler is not None:
                profiler.enable()
            recorded, pages, polls = side.poll_to_end(marketplace)
            if profiler is not None:
                profiler.disable()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        figures[marketplace] = (recorded, seconds)
        total_items += recorded
        total_seconds += seconds
        rate = recorded / seconds if seconds else 0.0
        print(
            f"{LABELS[marketplace]:15} {recorded:9,} {pages:7,} {polls:6} {seconds:8.2f} {rate:8.0f} "
            f"{cpu:7.2f} {meter.count:8,} {meter.ms / 1000:7.2f}"
        )
    rate = total_items / total_seconds if total_seconds else 0.0
    print(f"{'overall':15} {total_items:9,} {'':7} {'':6} {total_seconds:8.2f} {rate:8.0f}")
    figures["overall"] = (total_items, total_seconds)
    if profiler is not None:
        import pstats

        print(f"\nthe poll's {profile} most expensive calls (cumulative, this process):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(profile)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000, help="buyer messages per marketplace (10,000)")
    parser.add_argument("--chats", type=int, default=500, help="chats per marketplace (500); ≤ 100 messages a chat")
    parser.add_argument("--events-page", type=int, default=100, help="WB events per /seller/events answer (100)")
    parser.add_argument("--marketplaces", default=",".join(MARKETPLACES), help="ozon,wildberries,yandex_market")
    parser.add_argument("--answers", type=int, default=500, help="customer messages answered per account; 0 all")
    parser.add_argument("--followups", type=int, default=50, help="chats per marketplace given a follow-up (50)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="DATABASE_URL in the environment wins")
    parser.add_argument("--sqlite", action="store_true", help=f"run on SQLite ({SQLITE_URL})")
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help="cache and queue, flushed (db 7); none: locmem + ORM broker"
    )
    parser.add_argument("--connectors", action="store_true", help="the connectors alone, no poller, no database")
    parser.add_argument("--profile", type=int, default=0, help="print the first poll's N costliest calls")
    parser.add_argument("--real-limits", action="store_true", help="keep the marketplaces' request rates")
    args = parser.parse_args()
    marketplaces = [m.strip() for m in args.marketplaces.split(",") if m.strip()]
    unknown = set(marketplaces) - set(MARKETPLACES)
    if unknown:
        parser.error(f"unknown marketplaces: {sorted(unknown)}")
    if args.messages > args.chats * 100:
        # Ozon and Market read a chat new to them from its latest 100 messages.
        parser.error("more than 100 messages a chat: raise --chats")

    if args.redis_url.lower() in ("", "none"):
        args.redis_url = ""
    url = SQLITE_URL if args.sqlite else (os.environ.get("DATABASE_URL") or args.database_url)
    scheme = urlsplit(url).scheme
    if scheme in ("postgres", "postgresql", "pgsql"):
        ensure_database(url)
    elif scheme != "sqlite":
        print(f"bench/marketplaces.py runs on PostgreSQL or SQLite; the database URL is {url!r}.", file=sys.stderr)
        return 2

    # The stand-ins fork before Django opens a connection or starts a thread.
    standins = StandIns(
        messages=args.messages, chats=args.chats, events_page=args.events_page, marketplaces=tuple(marketplaces)
    )
    standins_url = standins.serve_in_process()
    try:
        return run(args, url, marketplaces, standins, standins_url)
    finally:
        standins.stop()


def run(args, url: str, marketplaces: list[str], standins: StandIns, standins_url: str) -> int:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LLM_PROVIDER": "",
            "REDIS_URL": args.redis_url,
            # The cluster's sweep must not answer what this script answers itself.
            "REPLY_SWEEP_AFTER_S": "3600",
        }
    )
    import django

    django.setup()
    import logging

    from django.core.management import call_command
    from django.db import connection

    for name in ("integrations", "django-q"):
        logging.getLogger(name).setLevel(logging.ERROR)
    use_poller = not args.connectors and poller_available()
    if not args.connectors and not use_poller:
        # TODO(poller): integrations/marketplaces/polling.py has not landed; PollerSide takes over once it does.
        print("!! integrations/marketplaces/polling.py does not exist yet: measuring the connectors alone")
    print(
        f"== bench/marketplaces.py: {len(marketplaces)} accounts × {args.messages:,} buyer messages "
        f"over {args.chats} chats each; stand-ins at {standins_url} (pid {standins.process.pid})"
    )
    print(
        f"database {connection.vendor} {connection.settings_dict['NAME']}; cache and queue: "
        f"{'Redis ' + args.redis_url if args.redis_url else 'process-local cache, ORM broker'}"
    )
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")

    call_command("migrate", verbosity=0)
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    print(f"flushed: {flush()}")
    if use_poller:
        from bots.models import AssistantSettings
        from catalog.demo import load_demo_store

        report, _faq = load_demo_store()
        config = AssistantSettings.load()
        config.provider = ""
        config.save()
        print(f"demo catalog loaded ({report.seen} products); retrieval mode (no LLM)")
    if not args.real_limits:
        lift_rate_limits()
        print("the marketplaces' request rates lifted for the run (--real-limits keeps them)")
    accounts = create_accounts(standins_url, marketplaces)
    side = PollerSide(accounts) if use_poller else ConnectorSide(accounts)
    print(f"side: {side.name}; RSS after setup {rss_mb():.0f} MB")
    problems: list[str] = []

    # 1. Poll to the end.
    figures = poll_all(side, marketplaces, "1. poll every account's chat stream to the end", profile=args.profile)
    peak = peak_rss_mb()
    print(f"peak RSS {peak:.0f} MB (target < {TARGET_RSS_MB:.0f} MB)")
    counts = {m: side.counts(m) for m in marketplaces}
    for marketplace in marketplaces:
        c = counts[marketplace]
        extra = f", read twice {c['read twice']}" if "read twice" in c else ""
        print(
            f"{LABELS[marketplace]:15} customer messages {c['customer']:,} in {c['conversations']} chats, "
            f"rows {c['all']:,}, duplicates {c['duplicates']}{extra}"
        )
        if c["customer"] != args.messages:
            problems.append(f"{marketplace}: {c['customer']} customer messages stored, {args.messages} written")
        if c["duplicates"]:
            problems.append(f"{marketplace}: {c['duplicates']} duplicate (conversation, external id) pairs")
    overall_rate = figures["overall"][0] / figures["overall"][1] if figures["overall"][1] else 0.0
    if overall_rate < TARGET_PER_S:
        problems.append(f"poll throughput {overall_rate:.0f} messages/s, target ≥ {TARGET_PER_S:.0f}")
    if peak >= TARGET_RSS_MB:
        problems.append(f"peak RSS {peak:.0f} MB, target < {TARGET_RSS_MB:.0f} MB")

    # 2. Answer.
    what = "every customer message" if not args.answers else f"{args.answers:,} customer messages per account"
    print(f"\n== 2. answer {what}")
    answered = {}
    for marketplace in marketplaces:
        outcomes, seconds, count = side.answer(marketplace, args.answers)
        answered[marketplace] = count
        rate = count / seconds if seconds else 0.0
        shown = ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
        print(f"{LABELS[marketplace]:15} {count:6,} answers in {seconds:7.2f} s, {rate:6.0f}/s ({shown})")
        if outcomes["sent"] != count:
            problems.append(f"{marketplace}: of {count} answers {count - outcomes['sent']} not sent ({shown})")
    received = standins.sends()
    for marketplace in marketplaces:
        at_standin = Counter(tuple(pair) for pair in received.get(marketplace, []))
        ours = side.sent_replies(marketplace)
        twice = sum(1 for pair, n in at_standin.items() if n > ours.get(pair, 0))
        lost = sum(1 for pair, n in ours.items() if n > at_standin.get(pair, 0))
        print(
            f"{LABELS[marketplace]:15} sends at the stand-in {sum(at_standin.values()):,}, replies sent "
            f"{sum(ours.values()):,}: sent more often than replied {twice}, replied but not received {lost}"
        )
        if twice or lost:
            problems.append(f"{marketplace}: {twice} answers received more often than sent, {lost} not received")

    # 3. Poll again: our sends come back as the seller's, nothing new from buyers.
    before = {m: side.counts(m) for m in marketplaces}
    own_before = Counter(side.own_sends)
    poll_all(side, marketplaces, "3. poll again: our sends come back, nothing new is recorded as the buyer's")
    for marketplace in marketplaces:
        after = side.counts(marketplace)
        new_customer = after["customer"] - before[marketplace]["customer"]
        new_rows = after["all"] - before[marketplace]["all"]
        own = side.own_sends[marketplace] - own_before[marketplace]
        note = " (Market lists only chats waiting for us: answered ones are not read)" if marketplace == YM else ""
        print(
            f"{LABELS[marketplace]:15} new customer messages {new_customer}, new rows {new_rows}, "
            f"our sends read back {own}{note}"
        )
        if new_customer:
            problems.append(f"{marketplace}: {new_customer} of our sends (or old messages) recorded as new")
        if isinstance(side, PollerSide) and new_rows:
            problems.append(f"{marketplace}: {new_rows} rows added by a poll with nothing new")

    # 4. Follow-ups.
    if args.followups:
        added = standins.add_followups(args.followups)
        before = {m: side.counts(m) for m in marketplaces}
        own_before = Counter(side.own_sends)
        poll_all(side, marketplaces, f"4. {added} follow-ups ({args.followups} chats each), polled")
        for marketplace in marketplaces:
            new_customer = side.counts(marketplace)["customer"] - before[marketplace]["customer"]
            own = side.own_sends[marketplace] - own_before[marketplace]
            print(
                f"{LABELS[marketplace]:15} new customer messages {new_customer} (expected {args.followups}), "
                f"our sends read back {own}"
            )
            if new_customer != min(args.followups, args.chats):
                problems.append(f"{marketplace}: {new_customer} follow-ups recorded, {args.followups} written")

    stats = standins.stats()
    print("\nrequests at the stand-ins:")
    for marketplace in marketplaces:
        shown = ", ".join(f"{path} {n:,}" for path, n in sorted(stats.get(marketplace, {}).items()))
        print(f"  {LABELS[marketplace]}: {shown}")
    print(f"peak RSS {peak_rss_mb():.0f} MB at the end")
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        f"\nOK: {figures['overall'][0]:,} messages at {overall_rate:.0f}/s (target ≥ {TARGET_PER_S:.0f}), "
        f"peak RSS {peak:.0f} MB during the poll (target < {TARGET_RSS_MB:.0f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
