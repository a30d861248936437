"""What the inbox's reports read: each a table for a period, which the page draws as a chart and
exports as CSV. Plain reads; the heavier ones (response times) look at a bounded sample."""

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from catalog.models import SearchMiss
from conversations.models import Conversation, Message
from orders.models import Order

# Response times are measured over at most this many customer messages of the period.
MAX_TIMED = 20_000
TOP = 15


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @classmethod
    def last_days(cls, days: int = 14, *, today: date | None = None) -> "Period":
        today = today or timezone.localdate()
        return cls(today - timedelta(days=days - 1), today)

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass
class Table:
    """A report's rows under its headings; `chart` says how the page draws it."""

    title: str
    headings: list[str]
    rows: list[list] = field(default_factory=list)
    chart: str = ""  # "line" | "bar" | "" (a table only)
    # Per row, an action for staff: (label, URL); "" for none.
    actions: list[tuple[str, str]] = field(default_factory=list)


def _in(period: Period, field_name: str = "created_at") -> Q:
    return Q(**{f"{field_name}__gte": period.since, f"{field_name}__lt": period.until})


def messages_per_day(period: Period) -> Table:
    counts = (
        Message.objects.filter(_in(period), direction=Message.Direction.IN)
        .annotate(day=TruncDate("created_at"))
        .values("day", "channel")
        .annotate(n=Count("id"))
    )
    channels = sorted({c["channel"] for c in counts})
    by = {(c["day"], c["channel"]): c["n"] for c in counts}
    labels = dict(Conversation._meta.get_field("channel").choices)
    table = Table(_("Customer messages per day"), [_("day"), *(str(labels.get(c, c)) for c in channels)], chart="line")
    table.rows = [[day.isoformat(), *(by.get((day, c), 0) for c in channels)] for day in period.days()]
    return table


def response_times(period: Period) -> Table:
    """How long customers waited: for the bot's replies, and for the first operator message after a hand-off."""
    bot = (
        Message.objects.filter(_in(period), author=Message.Author.BOT, in_reply_to__isnull=False)
        .annotate(asked=F("in_reply_to__created_at"))
        .values_list("created_at", "asked")[:MAX_TIMED]
    )
    bot_s = [(answered - asked).total_seconds() for answered, asked in bot]
    first_operator = Message.objects.filter(
        conversation=OuterRef("pk"), author=Message.Author.OPERATOR, created_at__gte=OuterRef("handed_off_at")
    ).order_by("created_at")
    handed = (
        Conversation.objects.filter(_in(period, "handed_off_at"))
        .annotate(first=Subquery(first_operator.values("created_at")[:1]))
        .exclude(first=None)
        .values_list("first", "handed_off_at")[:MAX_TIMED]
    )
    operator_s = [(first - handed_at).total_seconds() for first, handed_at in handed]
    table = Table(_("First response time"), [_("who"), _("answers"), _("median, s"), _("p90, s")])
    for who, values in ((_("bot"), bot_s), (_("operator"), operator_s)):
        table.rows.append([who, len(values), _round(_median(values)), _round(_p90(values))])
    return table


def handoffs(period: Period) -> Table:
    reasons = (
        Conversation.objects.filter(_in(period, "handed_off_at"))
        .values("handoff_reason")
        .annotate(n=Count("id"))
        .order_by("-n")[:TOP]
    )
    table = Table(_("Hand-offs and their reasons"), [_("reason"), _("dialogs")], chart="bar")
    table.rows = [[r["handoff_reason"] or "—", r["n"]] for r in reasons]
    return table


def unanswered(period: Period) -> Table:
    """Customer messages the bot could not answer: a clarifying question or a fallback came back."""
    missed = (
        Message.objects.filter(
            _in(period),
            author=Message.Author.BOT,
            reply_kind__in=[Message.ReplyKind.CLARIFY, Message.ReplyKind.FALLBACK],
            in_reply_to__isnull=False,
        )
        .values("in_reply_to__text")
        .annotate(n=Count("id"))
        .order_by("-n")[:TOP]
    )
    table = Table(_("Questions the bot could not answer"), [_("customer message"), _("times")])
    table.rows = [[(m["in_reply_to__text"] or "")[:200], m["n"]] for m in missed]
    return table


def search_misses(period: Period) -> Table:
    """What customers searched for and the catalog did not have, most often first, each with «add a synonym»."""
    misses = SearchMiss.objects.filter(last_at__gte=period.since, last_at__lt=period.until).order_by("-times")[:TOP]
    table = Table(_("Searches with no results"), [_("query"), _("times")])
    add = reverse("admin:catalog_searchsynonym_add")
    for miss in misses:
        table.rows.append([miss.query, miss.times])
        table.actions.append((_("add a synonym"), f"{add}?{urlencode({'phrase': miss.query})}"))
    return table


def asked_products(period: Period) -> Table:
    through = Message.products.through
    top = (
        through.objects.filter(
            message__created_at__gte=period.since, message__created_at__lt=period.until, message__author="bot"
        )
        .values("product__title")
        .annotate(n=Count("id"))
        .order_by("-n")[:TOP]
    )
    table = Table(_("Products asked about most"), [_("product"), _("shown")], chart="bar")
    table.rows = [[t["product__title"], t["n"]] for t in top]
    return table


def chat_orders(period: Period) -> Table:
    per_day = {
        row["day"]: row
        for row in Order.objects.filter(_in(period), conversation__isnull=False)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"), total=Sum("total"))
    }
    table = Table(_("Orders from the chat"), [_("day"), _("orders"), _("sum, ₽")], chart="bar")
    table.rows = [
        [day.isoformat(), per_day.get(day, {}).get("n", 0), per_day.get(day, {}).get("total") or Decimal("0")]
        for day in period.days()
    ]
    return table


def llm_usage(period: Period) -> Table:
    per_day = {
        row["day"]: row
        for row in Message.objects.filter(_in(period), author=Message.Author.BOT)
        .exclude(llm_model="")
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
    }
    prompt_price = Decimal(settings.LLM_PRICE_PER_1K_PROMPT_TOKENS)
    completion_price = Decimal(settings.LLM_PRICE_PER_1K_COMPLETION_TOKENS)
    table = Table(
        _("LLM tokens and their cost"),
        [_("day"), _("prompt tokens"), _("completion tokens"), _("cost, ₽")],
        chart="line",
    )
    for day in period.days():
        row = per_day.get(day, {})
        prompt, completion = row.get("prompt") or 0, row.get("completion") or 0
        cost = (prompt * prompt_price + completion * completion_price) / 1000
        table.rows.append([day.isoformat(), prompt, completion, cost.quantize(Decimal("0.01"))])
    return table


REPORTS = {
    "messages": messages_per_day,
    "response": response_times,
    "handoffs": handoffs,
    "unanswered": unanswered,
    "misses": search_misses,
    "products": asked_products,
    "orders": chat_orders,
    "llm": llm_usage,
}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def _round(value: float | None):
    return "—" if value is None else round(value, 1)
