"""A marketplace dialog's answer deadline follows its account's rules (seeded from the marketplace's own):
Ozon's 48 calendar hours from the buyer's last unanswered message, low-star reviews in working hours."""

import datetime

import pytest
from django.utils import timezone

from conversations.incoming import IncomingMessage
from conversations.models import ChannelAccount, Message
from conversations.services import accept_incoming, hand_off, record_outgoing
from inbox.sla import deadline_and_warning
from integrations.marketplaces.deadlines import seed_deadlines
from integrations.marketplaces.models import MarketplaceAccount

pytestmark = pytest.mark.django_db
MSK = datetime.timezone(datetime.timedelta(hours=3))


def account(marketplace="ozon"):
    channel_account = ChannelAccount.objects.create(channel=marketplace, key=f"{marketplace}-shop")
    shop = MarketplaceAccount.objects.create(channel_account=channel_account, marketplace=marketplace)
    seed_deadlines(shop)
    return shop


def buyer_wrote(shop, at, *, stream="chat", rating=None, message_id="m1", thread="chat-1"):
    context = {"rating": rating} if rating else {}
    message, _ = accept_incoming(
        IncomingMessage(
            channel=shop.marketplace,
            dialog_id=thread,
            message_id=message_id,
            text="Где мой заказ?",
            account_id=shop.channel_account_id,
            channel_data={"stream": stream, "thread_id": thread, "context": context},
        )
    )
    Message.objects.filter(pk=message.pk).update(created_at=at)
    hand_off(conversation=message.conversation, reason="draft")
    return message.conversation


def test_an_ozon_chat_is_due_48_calendar_hours_after_the_buyer_wrote_with_a_warning_hours_before():
    wrote = datetime.datetime(2026, 12, 4, 22, 0, tzinfo=MSK)  # a Friday night: no working hours count
    conversation = buyer_wrote(account("ozon"), wrote)

    due, warn = deadline_and_warning(conversation)

    assert due == wrote + datetime.timedelta(hours=48)
    assert warn == datetime.timedelta(hours=4)


def test_the_clock_restarts_only_from_a_buyer_message_after_a_sent_answer():
    shop = account("ozon")
    first = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=MSK)
    conversation = buyer_wrote(shop, first)
    answer = record_outgoing(conversation=conversation, text="Уточняю", author=Message.Author.OPERATOR)
    Message.objects.filter(pk=answer.pk).update(
        delivery_state=Message.Delivery.SENT, created_at=first + datetime.timedelta(hours=1)
    )
    again = first + datetime.timedelta(hours=2)
    buyer_wrote(shop, again, message_id="m2")

    due, _ = deadline_and_warning(conversation)

    assert due == again + datetime.timedelta(hours=48)


def test_a_draft_not_sent_does_not_stop_the_clock():
    wrote = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=MSK)
    conversation = buyer_wrote(account("ozon"), wrote)
    record_outgoing(conversation=conversation, text="Черновик", draft=True)

    due, _ = deadline_and_warning(conversation)

    assert due == wrote + datetime.timedelta(hours=48)


def test_a_low_star_review_is_due_in_working_hours():
    wrote = datetime.datetime(2026, 12, 1, 20, 0, tzinfo=MSK)  # an hour before closing (09:00–21:00)
    conversation = buyer_wrote(account("wildberries"), wrote, stream="reviews", rating=1, thread="review:r1")

    due, _ = deadline_and_warning(conversation)

    assert due.astimezone(MSK) == datetime.datetime(2026, 12, 2, 12, 0, tzinfo=MSK)


def test_a_five_star_review_waits_for_the_archive_window():
    wrote = timezone.now() - datetime.timedelta(days=1)
    conversation = buyer_wrote(account("wildberries"), wrote, stream="reviews", rating=5, thread="review:r2")

    due, _ = deadline_and_warning(conversation)

    assert due == wrote + datetime.timedelta(days=30)
