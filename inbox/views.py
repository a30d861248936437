"""The operator inbox's pages: the list of dialogs and a dialog, kept live by htmx polling.

Polling rather than server-sent events: gunicorn's sync workers would each be
held by an open event stream, while a poll is one short request that asks only
for what came after the last message it has (`?after=<id>`).
"""

import csv
import functools
import uuid
from datetime import date

from django.contrib import messages as flash
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bots import assistant
from catalog.models import Product
from conversations import services
from conversations.models import Channel, Conversation, Message
from inbox import roles
from inbox.models import CannedReply
from inbox.reports import REPORTS, Period
from inbox.selectors import LIST_SIZE, Show, dialog_messages, inbox_dialogs
from inbox.sla import MARKETPLACES, WorkingSchedule, deadline_and_warning, with_sla_fields, working_minutes_between
from integrations.marketplaces import services as marketplace_services
from orders.models import ReturnRequest
from orders.selectors import customer_of, customer_orders

MAX_REPLY_CHARS = 4000
# A dialog is shown as soon due this many working minutes before its deadline.
DUE_SOON_MINUTES = 5


def _list_context(request) -> dict:
    show = request.GET.get("show", Show.ALL)
    if show not in Show.CHOICES:
        show = Show.ALL
    channel = request.GET.get("channel", "")
    if channel not in Channel.values:
        channel = ""
    query = request.GET.get("q", "")[:200]
    dialogs = list(
        with_sla_fields(inbox_dialogs(user=request.user, show=show, channel=channel, query=query))[:LIST_SIZE]
    )
    _with_deadlines(dialogs)
    if show == Show.OVERDUE:
        dialogs = [d for d in dialogs if d.overdue]
    return {
        "dialogs": dialogs,
        "show": show,
        "channel": channel,
        "query": query,
        "shows": [
            (Show.ALL, _("All")),
            (Show.WAITING, _("Waiting")),
            (Show.MINE, _("Mine")),
            (Show.UNASSIGNED, _("Unassigned")),
            (Show.OVERDUE, _("Overdue")),
        ],
        "channels": Channel.choices,
    }


def operator_required(view):
    """Staff logged in (else the admin's login page), with an inbox role (else 403); reports want a manager."""

    @staff_member_required
    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not roles.is_operator(request.user):
            raise PermissionDenied(_("The inbox is for operators, managers and administrators."))
        return view(request, *args, **kwargs)

    return wrapped


def _with_deadlines(dialogs: list[Conversation]) -> None:
    """Each dialog's SLA deadline (None: nothing awaits an operator), overdue and soon due; the overdue ones
    move to the top, the soonest due first, the rest keeping their order."""
    schedule = WorkingSchedule.load()
    now = timezone.now()
    for d in dialogs:
        d.deadline, warn_before = deadline_and_warning(d, schedule)
        d.overdue = d.deadline is not None and now > d.deadline
        # From the deadline just worked out (inbox.sla.due_soon would work it out again);
        # a marketplace's rule says how early to warn (Ozon's 48 hours: hours before).
        d.due_soon = (
            d.deadline is not None
            and not d.overdue
            and (
                now >= d.deadline - warn_before
                if warn_before is not None
                else working_minutes_between(now, d.deadline, schedule) <= DUE_SOON_MINUTES
            )
        )
    dialogs.sort(key=lambda d: (not d.overdue, d.deadline if d.overdue else now))


@operator_required
def dialog_list(request):
    return render(request, "inbox/list.html", _list_context(request))


@operator_required
def dialog_rows(request):
    """The list's rows alone, for the page's poll."""
    return render(request, "inbox/_rows.html", _list_context(request))


@operator_required
def dialog_detail(request, pk: int):
    conversation = get_object_or_404(Conversation.objects.select_related("account", "assigned_operator"), pk=pk)
    transcript = list(dialog_messages(conversation))
    customer = customer_of(conversation)
    return render(
        request,
        "inbox/dialog.html",
        {
            "conversation": conversation,
            "transcript": transcript,
            "last_id": transcript[-1].pk if transcript else 0,
            "orders": list(customer_orders(customer)[:10]) if customer else [],
            "canned": list(CannedReply.objects.filter(is_active=True)),
            "returns": list(ReturnRequest.objects.filter(order__customer=customer).order_by("-pk")[:10])
            if customer
            else [],
            "colleagues": roles.inbox_staff(),
            "reply_token": uuid.uuid4().hex,
            "pending_draft": conversation.messages.filter(delivery_state=Message.Delivery.DRAFT)
            .order_by("-created_at", "-id")
            .first(),
            "marketplace": marketplace_context(conversation),
            "editable_answer": marketplace_services.editable_answer(conversation),
        },
    )


@operator_required
def dialog_updates(request, pk: int):
    """Messages after `after` and the dialog's state, for the open dialog's poll."""
    conversation = get_object_or_404(Conversation.objects.select_related("assigned_operator"), pk=pk)
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        return HttpResponseBadRequest("after must be a message id")
    new = list(dialog_messages(conversation, after=after))
    return render(
        request,
        "inbox/_updates.html",
        {"conversation": conversation, "new_messages": new, "last_id": new[-1].pk if new else after},
    )


@require_POST
@operator_required
def dialog_draft(request, pk: int):
    """«Предложить ответ»: the assistant's answer to the customer's last message, put in the reply box as a
    draft. Nothing is sent: the operator edits it and sends it, or not."""
    conversation = get_object_or_404(Conversation, pk=pk)
    last = conversation.messages.filter(author=Message.Author.CUSTOMER).order_by("-created_at", "-id").first()
    text = assistant.draft(conversation, last).text if last is not None else ""
    canned = list(CannedReply.objects.filter(is_active=True))
    return render(
        request,
        "inbox/_reply_box.html",
        {
            "conversation": conversation,
            "draft": text,
            "drafted": True,
            "canned": canned,
            "reply_token": uuid.uuid4().hex,
        },
    )


@require_POST
@operator_required
def dialog_action(request, pk: int, action: str):
    conversation = get_object_or_404(Conversation, pk=pk)
    if action == "take":
        services.take_over(conversation=conversation, operator=request.user)
    elif action == "return":
        services.return_to_bot(conversation=conversation)
    elif action == "close":
        services.close(conversation=conversation)
    elif action == "assign":
        colleague = roles.inbox_staff().filter(pk=request.POST.get("operator") or 0).first()
        if colleague is None:
            return HttpResponseBadRequest("no such colleague")
        services.take_over(conversation=conversation, operator=colleague)
    elif action == "edit_answer":
        try:
            marketplace_services.edit_answer(
                conversation=conversation, operator=request.user, text=request.POST.get("text", "")
            )
        except marketplace_services.AnswerNotEditable as exc:
            flash.error(request, _("The answer was not changed: %(reason)s") % {"reason": exc})
        else:
            flash.success(request, _("The answer is changed on Wildberries; it cannot be changed again."))
    elif action in ("approve", "discard"):
        draft = get_object_or_404(
            Message, pk=request.POST.get("draft") or 0, conversation=conversation, delivery_state=Message.Delivery.DRAFT
        )
        if action == "discard":
            services.discard_draft(message=draft)
        else:
            text = request.POST.get("text", "").strip()
            if len(text) > MAX_REPLY_CHARS:
                flash.error(request, _("The reply is too long."))
            else:
                services.approve_draft(message=draft, operator=request.user, text=text)
    elif action == "reply":
        text = request.POST.get("text", "").strip()
        if not text:
            flash.error(request, _("The reply is empty."))
        elif len(text) > MAX_REPLY_CHARS:
            flash.error(request, _("The reply is too long."))
        else:
            services.send_operator_reply(
                conversation=conversation,
                operator=request.user,
                text=text,
                client_token=request.POST.get("client_token", ""),
            )
    else:
        return HttpResponseBadRequest("unknown action")
    return redirect("inbox:dialog", pk=conversation.pk)


def marketplace_context(conversation: Conversation) -> dict | None:
    """What the marketplace told about a marketplace dialog, for the dialog page: stream, product, order, stars."""
    if conversation.channel not in MARKETPLACES:
        return None
    data = conversation.channel_data or {}
    context = data.get("context") or {}
    product_id = (conversation.dialog_context or {}).get("focus")
    return {
        "stream": {"chat": _("Buyer chat"), "questions": _("Question"), "reviews": _("Review")}.get(
            data.get("stream") or "chat", ""
        ),
        "account": conversation.account.name or conversation.account.key,
        "product_name": context.get("product_name", ""),
        "article": context.get("offer_id") or context.get("sku") or context.get("nm_id") or "",
        "product": Product.objects.filter(pk=product_id).first() if product_id else None,
        "order_number": context.get("order_number", ""),
        "rating": context.get("rating"),
        "pros": context.get("pros", ""),
        "cons": context.get("cons", ""),
        "window_closed": bool(data.get("reply_window_closed")),
    }


MAX_REPORT_DAYS = 366


@operator_required
def reports(request):
    """The reports for a period (the last two weeks by default); `?export=<report>` gives one as CSV."""
    if not roles.is_manager(request.user):
        raise PermissionDenied(_("Reports are for managers and administrators."))
    period = _period(request)
    if period is None:
        return HttpResponseBadRequest(_("The period is not a pair of dates."))
    export = request.GET.get("export", "")
    if export:
        build = REPORTS.get(export)
        if build is None:
            return HttpResponseBadRequest("unknown report")
        return _csv(build(period), f"{export}-{period.start}-{period.end}.csv")
    tables = [(key, build(period)) for key, build in REPORTS.items()]
    charts = {key: {"type": t.chart, "headings": t.headings, "rows": t.rows} for key, t in tables if t.chart}
    return render(request, "inbox/reports.html", {"period": period, "tables": tables, "charts": charts})


def _period(request) -> Period | None:
    default = Period.last_days(14)
    try:
        start = date.fromisoformat(request.GET["start"]) if request.GET.get("start") else default.start
        end = date.fromisoformat(request.GET["end"]) if request.GET.get("end") else default.end
    except ValueError:
        return None
    if end < start or (end - start).days >= MAX_REPORT_DAYS:
        return None
    return Period(start, end)


def _csv(table, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response.write("\ufeff")  # Excel reads the file as UTF-8 with it
    writer = csv.writer(response)
    writer.writerow(table.headings)
    for row in table.rows:
        writer.writerow([_cell(value) for value in row])
    return response


def _cell(value):
    # A cell a spreadsheet would run as a formula is written as text.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
