"""The worker's side of orders: the push to Bitrix24 with retries, deal stages from events, the periodic pull.

A push that Bitrix24 refuses for now is tried again by a one-off schedule at
the time the order says (orders.push.retry_delay); the pull every few minutes
also queues a push whose task was lost, and reads the stages of our deals
changed lately, for the events Bitrix24 did not deliver (it does not resend).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule

from integrations.bitrix24 import crm
from integrations.bitrix24.client import Bitrix24Error
from integrations.tasks import outlasting_database_outage
from orders import push
from orders.models import Order
from orders.services import enqueue_push

logger = logging.getLogger(__name__)

PULL_SCHEDULE = "orders: Bitrix24 deal stages, and pushes left behind"
# A pending push whose retry time passed this long ago has lost its task.
LOST_PUSH_AFTER_S = 300
SWEEP_MAX = 500


@outlasting_database_outage
def push_order(order_id: int) -> str:
    state = push.push(order_id)
    if state == Order.PushState.PENDING:
        _push_later(Order.objects.get(pk=order_id))
    return state


def _push_later(order: Order) -> None:
    Schedule.objects.get_or_create(
        name=f"order push {order.pk} #{order.push_attempts}",
        defaults={
            "func": "orders.tasks.push_order",
            "args": repr(order.pk),
            "schedule_type": Schedule.ONCE,
            "repeats": 1,
            "next_run": order.push_retry_at or timezone.now(),
        },
    )


@outlasting_database_outage
def sync_deal(order_id: int) -> str:
    """A deal event's task: the deal read again and its stage applied."""
    try:
        return push.sync_deal(order_id)
    except Bitrix24Error as exc:
        # The pull reads the deal again within ORDER_CRM_PULL_INTERVAL_S.
        logger.warning("deal of order %s not read: %s (HTTP %s); left to the pull", order_id, exc.code, exc.status)
        return "failed"


def pull() -> dict:
    """The periodic task: pushes left behind queued again, then the stages of our deals changed lately."""
    if not settings.B24_CRM_ORDERS:
        return {"off": True}
    return {"pushes": requeue_lost_pushes(), "deals": pull_deal_stages()}


def requeue_lost_pushes() -> int:
    now = timezone.now()
    lost_before = now - timedelta(seconds=LOST_PUSH_AFTER_S)
    orders = Order.objects.filter(push_state=Order.PushState.PENDING).filter(
        Q(push_retry_at__isnull=True, created_at__lt=lost_before) | Q(push_retry_at__lt=lost_before)
    )
    queued = 0
    for order in orders.order_by("pk")[:SWEEP_MAX]:
        # add() is atomic: two pulls never both queue one order.
        if cache.add(f"order-push-swept:{order.pk}:{order.push_attempts}", 1, LOST_PUSH_AFTER_S):
            enqueue_push(order)
            queued += 1
    if queued:
        logger.info("pull queued %s order pushes left without a task", queued)
    return queued


def pull_deal_stages() -> int:
    """Read our deals changed within ORDER_CRM_PULL_WINDOW_S, portal by portal, and apply their stages."""
    since = timezone.now() - timedelta(seconds=settings.ORDER_CRM_PULL_WINDOW_S)
    members = Order.objects.exclude(crm_deal_id="").order_by().values_list("crm_member_id", flat=True).distinct()
    changed = 0
    for member_id in list(members):
        try:
            clients = push.clients_for(member_id)
            domain = crm.domain_of(clients.reads)
            for deal in crm.deals_changed_since(clients.reads, since):
                order = Order.objects.filter(crm_domain=domain, crm_deal_id=deal.id).first()
                if order is not None and push.apply_deal(order, deal) == "changed":
                    changed += 1
        except Bitrix24Error as exc:
            logger.warning("deal stages of portal %r not pulled: %s (HTTP %s)", member_id, exc.code, exc.status)
    if changed:
        logger.info("pull found %s deals in a new stage", changed)
    return changed


def ensure_pull_schedule() -> None:
    Schedule.objects.get_or_create(
        name=PULL_SCHEDULE,
        defaults={
            "func": "orders.tasks.pull",
            "schedule_type": Schedule.MINUTES,
            "minutes": max(1, settings.ORDER_CRM_PULL_INTERVAL_S // 60),
            "repeats": -1,
        },
    )
