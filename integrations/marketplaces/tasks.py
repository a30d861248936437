"""The worker's side of marketplace polling: one django-q2 schedule per account and stream.

A schedule never overlaps itself: a poll that finds the stream leased by a
poll still running returns at once (integrations.marketplaces.polling). A
push notification (Ozon's, Market's) asks for a poll now; repeated ones
within POLL_ASKED_TTL_S ask once.
"""

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from integrations.marketplaces.connectors import connector_for
from integrations.marketplaces.models import MarketplaceAccount, Mode, PollCursor
from integrations.marketplaces.polling import poll

SCHEDULE_PREFIX = "marketplace poll"
POLL_ASKED_TTL_S = 5


def schedule_name(account_id: int, stream: str) -> str:
    return f"{SCHEDULE_PREFIX} {account_id} {stream}"


def poll_stream(account_id: int, stream: str) -> str:
    account = MarketplaceAccount.objects.select_related("channel_account").filter(pk=account_id).first()
    if account is None:
        return "no such account"
    result = poll(account, stream)
    return result.skipped or result.error or f"{result.recorded} recorded"


def ensure_poll_schedules() -> None:
    """A schedule for each active account's stream that is not off; none for the others."""
    wanted = {}
    for account in MarketplaceAccount.objects.select_related("channel_account"):
        if not account.channel_account.is_active:
            continue
        for stream in connector_for(account).streams:
            if account.mode_for(stream) != Mode.OFF:
                wanted[schedule_name(account.pk, stream)] = (account, stream)
    Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX).exclude(name__in=list(wanted)).delete()
    for name, (account, stream) in wanted.items():
        minutes = max(1, round(account.poll_interval_s / 60))
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": "integrations.marketplaces.tasks.poll_stream",
                "args": repr((account.pk, stream))[1:-1],
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )


def ask_for_poll(account: MarketplaceAccount, stream: str) -> bool:
    """A notification said there is news: poll the stream now (once for a burst of notifications)."""
    PollCursor.objects.get_or_create(account=account, stream=stream)
    PollCursor.objects.filter(Q(account=account, stream=stream)).update(poll_requested_at=timezone.now())
    if not cache.add(f"marketplace-poll-asked:{account.pk}:{stream}", 1, POLL_ASKED_TTL_S):
        return False
    async_task("integrations.marketplaces.tasks.poll_stream", account.pk, stream)
    return True
