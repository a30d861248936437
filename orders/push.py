"""An order into Bitrix24 CRM exactly once, and a deal's stage back to the customer.

Bitrix24's REST API has no idempotency key, so "exactly once" is made here:

1. One push of an order at a time: the order's row is locked (SELECT ... FOR
   UPDATE) for the whole push; a second worker waits, then finds it done.
2. Before every add, and so on every retry, our deal is looked up by
   ORIGINATOR_ID "storebot" and ORIGIN_ID (the order's uid): a deal made by an
   earlier try whose answer was lost (a timeout after Bitrix24 committed it) is
   found and used, not made again.
3. An add is one request with no retry of its own (the seam would repeat a
   timed-out POST); an add whose outcome is unknown (a timeout, a lost
   connection, a 5xx) is looked up at once, and only a later try adds again.
4. Each step done is saved on the order as it goes (the contact, the deal, the
   rows, the comment's id) and the lock's transaction commits those even when
   a later step fails, so a retry starts where the last one stopped. The
   product rows are set with crm.item.productrow.set, which replaces them; the
   transcript comment is looked up by its marker before a retry adds it.

A deal already linked to an Open Lines chat (CHAT_ENTITY_DATA_2 "...|DEAL|7")
is taken over instead of making one, when it is still open and no order of
ours has it; its contact too.

Back: a deal event or the periodic pull reads the deal, and a stage other than
the one recorded changes the order's state and tells the customer that stage's
text (OrderStageText), once: the stage is compared and set under the order's
lock, in the same transaction that records the message.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from catalog.models import Source
from conversations.models import Channel, Conversation, Message
from integrations.bitrix24 import crm
from integrations.bitrix24.client import Bitrix24Client, Bitrix24Error
from integrations.bitrix24.formatting import escape
from integrations.bitrix24.models import Portal
from orders.models import Order, OrderChange
from orders.phones import display_phone
from orders.services import money, render, tell, text_for_stage

logger = logging.getLogger(__name__)

# Errors after which an add may or may not have happened: looked up before anything is added again.
UNKNOWN_OUTCOME = {"TIMEOUT", "CONNECTION_ERROR", "BAD_RESPONSE"}
# Answers (5xx among them) that say the call was refused, not carried out.
REFUSED = {"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "RATE_LIMITED"}
TRANSCRIPT_MESSAGES = 60
# What a push writes on the order: only these, so an edit made in admin meanwhile is kept.
PUSH_FIELDS = ["push_state", "push_attempts", "push_error", "push_retry_at", "pushed_at", "updated_at"]
MARKER_PREFIX = "storebot order"


@dataclass
class CrmClients:
    """The portal's clients: `reads` retries what is safe to repeat, `adds` makes one request per call."""

    reads: Bitrix24Client
    adds: Bitrix24Client

    @property
    def member_id(self) -> str:
        return self.reads.portal.member_id if self.reads.portal is not None else ""


def clients_for(member_id: str = "", **options) -> CrmClients:
    """The clients for a portal (member id) as the chat bot reaches it: its app install, else the webhook.

    An order from another channel (no member id) goes to the webhook's portal,
    or without a webhook to the portal the app was installed on first.
    """
    installed = Portal.objects.exclude(access_token="")
    portal = installed.filter(member_id=member_id).first() if member_id else None
    if portal is None and not member_id and not settings.B24_WEBHOOK_URL:
        portal = installed.order_by("pk").first()
    if portal is not None:
        return CrmClients(
            reads=Bitrix24Client.for_portal(portal, **options),
            adds=Bitrix24Client.for_portal(portal, **{**options, "max_attempts": 1}),
        )
    return CrmClients(
        reads=Bitrix24Client.for_webhook(**options),
        adds=Bitrix24Client.for_webhook(**{**options, "max_attempts": 1}),
    )


def push(order_id: int, *, clients: CrmClients | None = None) -> str:
    """Push one order; its push state after ("pushed", "pending" for a retry, "failed", "off").

    Bitrix24's errors are recorded on the order, never raised: the caller
    decides on a retry from the state. Anything else (a bug, the database)
    rolls the attempt back and is raised.
    """
    with transaction.atomic():
        # The order's row only: its conversation may be missing (an outer join, which cannot be locked).
        locking = Order.objects.select_for_update(of=("self",))
        order = locking.select_related("customer", "conversation").get(pk=order_id)
        if order.push_state in (Order.PushState.PUSHED, Order.PushState.OFF) or not settings.B24_CRM_ORDERS:
            return order.push_state
        try:
            clients = clients or clients_for(_member_of(order))
            _push(order, clients)
        except Bitrix24Error as exc:
            return _failed(order, exc)
        order.push_state = Order.PushState.PUSHED
        order.push_error = ""
        order.push_retry_at = None
        order.pushed_at = timezone.now()
        order.push_attempts += 1
        order.save(update_fields=PUSH_FIELDS)
    logger.info("order %s pushed to Bitrix24: deal %s on %s", order.number, order.crm_deal_id, order.crm_domain)
    return Order.PushState.PUSHED


def _failed(order: Order, exc: Bitrix24Error) -> str:
    order.push_attempts += 1
    order.push_error = f"{timezone.now():%Y-%m-%d %H:%M} {exc}"[:2000]
    if exc.permanent or order.push_attempts >= settings.ORDER_PUSH_MAX_ATTEMPTS:
        order.push_state = Order.PushState.FAILED
        order.push_retry_at = None
    else:
        order.push_state = Order.PushState.PENDING
        order.push_retry_at = timezone.now() + timedelta(seconds=retry_delay(order.push_attempts, exc))
    order.save(update_fields=PUSH_FIELDS)
    logger.warning(
        "order %s not pushed to Bitrix24 (attempt %s): %s (HTTP %s); %s",
        order.number,
        order.push_attempts,
        exc.code,
        exc.status,
        "given up" if order.push_state == Order.PushState.FAILED else f"retry at {order.push_retry_at:%H:%M:%S}",
    )
    return order.push_state


def retry_delay(attempts: int, exc: Bitrix24Error | None = None) -> float:
    """30 s, 1, 2, 4... minutes, at most an hour; longer when Bitrix24 said how long to stay away."""
    delay = min(30 * 2 ** max(attempts - 1, 0), 3600)
    if exc is not None and exc.retry_after:
        delay = max(delay, min(exc.retry_after, 3600))
    return delay


def _push(order: Order, clients: CrmClients) -> None:
    """Each step once: the contact, the deal, its stage, its rows, the transcript; each saved when done."""
    reads = clients.reads
    if not order.crm_domain:
        order.crm_member_id = clients.member_id
        order.crm_domain = crm.domain_of(reads)[:255]
        order.save(update_fields=["crm_member_id", "crm_domain"])
    bindings = chat_bindings(order.conversation)
    if not order.crm_contact_id:
        order.crm_contact_id = bindings.get("CONTACT") or _contact(order, clients)
        order.save(update_fields=["crm_contact_id"])
    if not order.crm_deal_id:
        deal = crm.find_deal(reads, str(order.uid)) or _chat_deal(order, reads, bindings.get("DEAL"))
        if deal is not None:
            order.crm_stage_id, order.crm_modified_at = deal.stage_id, deal.modified_at
        order.crm_deal_id = deal.id if deal is not None else _add_deal(order, clients)
        order.save(update_fields=["crm_deal_id", "crm_stage_id", "crm_modified_at"])
    if not order.crm_stage_id:
        # Recorded without telling the customer: the dialog confirms the order itself.
        deal = crm.get_deal(reads, order.crm_deal_id)
        order.crm_stage_id, order.crm_modified_at = deal.stage_id, deal.modified_at
        order.save(update_fields=["crm_stage_id", "crm_modified_at"])
    if not order.crm_rows_set:
        crm.set_product_rows(reads, order.crm_deal_id, product_rows(order))
        order.crm_rows_set = True
        order.save(update_fields=["crm_rows_set"])
    if not order.crm_comment_id:
        order.crm_comment_id = _add_comment(order, clients)
        order.save(update_fields=["crm_comment_id"])


def _contact(order: Order, clients: CrmClients) -> str:
    """The customer's contact: found by phone, else made (an add that was lost is found by phone)."""
    phone = order.customer.phone
    return crm.find_contact_by_phone(clients.reads, phone) or _add_once(
        lambda: crm.add_contact(
            clients.adds, name=order.customer.name, phone=phone, origin_id=f"customer-{order.customer_id}"
        ),
        lambda: crm.find_contact_by_phone(clients.reads, phone),
        what=f"crm.contact.add for order {order.number}",
    )


def _add_deal(order: Order, clients: CrmClients) -> str:
    deal_id = _add_once(
        lambda: crm.add_deal(clients.adds, deal_fields(order)),
        lambda: getattr(crm.find_deal(clients.reads, str(order.uid)), "id", None),
        what=f"crm.deal.add for order {order.number}",
    )
    logger.info("order %s: deal %s added", order.number, deal_id)
    return deal_id


def _add_comment(order: Order, clients: CrmClients) -> str:
    marker = f"{MARKER_PREFIX} {order.uid}"

    def find():
        return crm.find_deal_comment(clients.reads, order.crm_deal_id, marker)

    # An earlier try may have added it and lost the answer.
    found = find() if order.push_attempts or order.push_error else None
    return found or _add_once(
        lambda: crm.add_deal_comment(clients.adds, order.crm_deal_id, transcript(order, marker)),
        find,
        what=f"crm.timeline.comment.add for order {order.number}",
    )


def _add_once(add, find, *, what: str) -> str:
    """`add` once; when its outcome is unknown, `find` looks for what it may have made before the error stands."""
    try:
        return add()
    except Bitrix24Error as exc:
        if exc.code in REFUSED or (exc.code not in UNKNOWN_OUTCOME and (exc.status or 0) < 500):
            raise
        logger.warning("%s: %s, looking for what it may have made", what, exc.code)
        found = find()
        if not found:
            raise
        return found


def _chat_deal(order: Order, reads: Bitrix24Client, deal_id: str | None) -> crm.Deal | None:
    """The deal Open Lines linked the chat to, made ours, when it is open and no other order has it."""
    if not deal_id or Order.objects.filter(crm_domain=order.crm_domain, crm_deal_id=deal_id).exists():
        return None
    try:
        deal = crm.get_deal(reads, deal_id)
    except Bitrix24Error as exc:
        if not exc.permanent:
            raise
        return None  # gone, or not ours to read: a deal of our own instead
    if deal.closed or deal.semantic not in ("", "P") or deal.originator_id:
        return None
    fields = {
        "ORIGINATOR_ID": crm.ORIGINATOR_ID,
        "ORIGIN_ID": str(order.uid),
        "TITLE": deal_title(order),
        "OPPORTUNITY": str(order.total),
        "CURRENCY_ID": order.currency,
        "ADDITIONAL_INFO": order_summary(order),
    }
    if order.crm_contact_id:
        fields["CONTACT_IDS"] = [int(order.crm_contact_id)]
    crm.update_deal(reads, deal.id, fields)
    logger.info("order %s takes over the Open Lines deal %s", order.number, deal.id)
    return deal


def chat_bindings(conversation: Conversation | None) -> dict[str, str]:
    """The CRM items an Open Lines chat is linked to ({"CONTACT": "5", "DEAL": "7"}), from its latest message.

    Bitrix24 sends them with each message (data[PARAMS][CHAT_ENTITY_DATA_2]);
    the newest counts, since Open Lines may link the chat to a deal mid-session.
    """
    if conversation is None or conversation.channel != Channel.BITRIX24:
        return {}
    stored = (conversation.channel_data or {}).get("chat_entity_data_2")
    if stored:
        return crm.chat_bindings(stored)
    payloads = (
        Message.objects.filter(conversation=conversation, direction=Message.Direction.IN)
        .order_by("-created_at", "-id")
        .values_list("raw_payload", flat=True)[:20]
    )
    for payload in payloads:
        params = ((payload or {}).get("data") or {}).get("PARAMS") if isinstance(payload, dict) else None
        if isinstance(params, dict) and params.get("CHAT_ENTITY_DATA_2"):
            return crm.chat_bindings(params["CHAT_ENTITY_DATA_2"])
    return {}


# What goes to Bitrix24 ------------------------------------------------------------


def deal_title(order: Order) -> str:
    return f"Заказ №{order.number}"


def deal_fields(order: Order) -> dict:
    fields = {
        "TITLE": deal_title(order),
        "OPPORTUNITY": str(order.total),
        "CURRENCY_ID": order.currency,
        "ORIGINATOR_ID": crm.ORIGINATOR_ID,
        "ORIGIN_ID": str(order.uid),
        "SOURCE_DESCRIPTION": f"storebot: {order.get_channel_display()}",
        "ADDITIONAL_INFO": order_summary(order),
        "OPENED": "Y",
    }
    if order.crm_contact_id:
        fields["CONTACT_IDS"] = [int(order.crm_contact_id)]
    return fields


@translation.override("ru")
def order_summary(order: Order) -> str:
    """The order's details in plain lines, as staff read them in the deal (in Russian, whatever the site's language)."""
    lines = [
        f"{order.get_fulfilment_display()}" + (f": {order.address}" if order.address else ""),
        f"Оплата: {order.get_payment_display()}",
    ]
    if order.desired_time:
        lines.append(f"Когда: {order.desired_time}")
    lines.append(f"Телефон: {display_phone(order.customer.phone)}")
    if order.comment:
        lines.append(f"Комментарий: {order.comment}")
    return "\n".join(lines)


def product_rows(order: Order) -> list[dict]:
    """The deal's rows; a product imported from the portal's own catalog is referred to by its id there."""
    rows = []
    for number, line in enumerate(order.lines.select_related("product"), start=1):
        title = f"{line.title} ({line.pack})" if line.pack and line.pack not in line.title else line.title
        row = {
            "productName": title[:255],
            "price": float(line.unit_price),
            "quantity": line.quantity,
            "sort": number * 10,
        }
        product = line.product
        if product is not None and product.source == Source.BITRIX24 and product.external_id.isdigit():
            row["productId"] = int(product.external_id)
        rows.append(row)
    if order.delivery_cost:
        rows.append({"productName": "Доставка", "price": float(order.delivery_cost), "quantity": 1, "sort": 10_000})
    return rows


@translation.override("ru")
def transcript(order: Order, marker: str) -> str:
    """The timeline comment: the order, then the dialog it came from (BB-code, escaped)."""
    lines = [f"[b]{escape(deal_title(order))}[/b] из чата ({escape(order.get_channel_display())})"]
    lines += [escape(line) for line in order_summary(order).splitlines()]
    lines += [escape(f"{line.title} × {line.quantity} = {money(line.line_total)}") for line in order.lines.all()]
    lines.append(escape(f"Итого: {money(order.total)}"))
    conversation = order.conversation
    if conversation is not None:
        admin_url = settings.PUBLIC_URL.rstrip("/") + reverse(
            "admin:conversations_conversation_change", args=[conversation.pk]
        )
        lines += ["", f"[b]Переписка[/b] ({escape(admin_url)})"]
        recent = conversation.messages.order_by("-created_at", "-id")[:TRANSCRIPT_MESSAGES]
        labels = {Message.Author.CUSTOMER: "Клиент", Message.Author.BOT: "Бот", Message.Author.OPERATOR: "Оператор"}
        for message in reversed(list(recent)):
            said = message.transcript or message.text
            if said:
                lines.append(f"{labels.get(message.author, 'Система')}: {escape(said[:1000])}")
    lines += ["", escape(marker)]
    text = "\n".join(lines)
    if len(text) > crm.MAX_COMMENT_CHARS:
        # The end is kept: it has the latest messages and the marker a retry looks for.
        text = "…\n" + text[-(crm.MAX_COMMENT_CHARS - 2) :]
    return text


def _member_of(order: Order) -> str:
    if order.crm_member_id:
        return order.crm_member_id
    conversation = order.conversation
    if conversation is not None and conversation.channel == Channel.BITRIX24:
        return (conversation.channel_data or {}).get("member_id", "")
    return ""


# Back from Bitrix24 -------------------------------------------------------------


def sync_deal(order_id: int, *, clients: CrmClients | None = None) -> str:
    """Read the order's deal and apply its stage ("changed", "unchanged", "no deal")."""
    order = Order.objects.get(pk=order_id)
    if not order.crm_deal_id:
        return "no deal"
    clients = clients or clients_for(_member_of(order))
    return apply_deal(order, crm.get_deal(clients.reads, order.crm_deal_id))


def apply_deal(order: Order, deal: crm.Deal) -> str:
    """A stage other than the recorded one: the order's state follows and the customer is told, once."""
    with transaction.atomic():
        locked = Order.objects.select_for_update(of=("self",)).select_related("conversation").get(pk=order.pk)
        if locked.crm_deal_id != deal.id:
            return "not this deal"
        if not deal.stage_id or deal.stage_id == locked.crm_stage_id:
            if deal.modified_at and deal.modified_at != locked.crm_modified_at:
                Order.objects.filter(pk=locked.pk).update(crm_modified_at=deal.modified_at)
            return "unchanged"
        row = text_for_stage(deal.stage_id, deal.semantic)
        locked.crm_stage_id = deal.stage_id
        locked.crm_modified_at = deal.modified_at
        fields = ["crm_stage_id", "crm_modified_at", "updated_at"]
        if row is not None and row.state != locked.state:
            locked.state = row.state
            fields.append("state")
        locked.save(update_fields=fields)
        message = tell(locked, render(row.text, order=locked, reason=deal.reason) if row else "")
        OrderChange.objects.create(
            order=locked,
            source=OrderChange.Source.CRM,
            stage_id=deal.stage_id,
            state=row.state if row else "",
            message=message,
        )
    logger.info("order %s: deal %s moved to %s", order.number, deal.id, deal.stage_id)
    return "changed"
