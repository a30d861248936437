"""Marketplace dialogs in the inbox: marketplace, account, product and stars beside the transcript;
the bot's draft shown for approval, sent once approved, never when discarded."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from conversations.incoming import IncomingMessage
from conversations.models import ChannelAccount, Conversation, Message
from conversations.services import accept_incoming, hand_off, record_outgoing
from inbox import roles
from integrations.marketplaces.models import MarketplaceAccount

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_channels")]


@pytest.fixture
def staff(client):
    person = get_user_model().objects.create_user("olga", password="pw", is_staff=True)
    person.groups.add(Group.objects.get(name=roles.GROUP_NAMES[roles.OPERATORS]))
    client.force_login(person)
    return client


def review_with_draft(rating=2, draft="Нам очень жаль, разберёмся."):
    channel_account = ChannelAccount.objects.create(channel="wildberries", key="wb", name="Морской WB")
    MarketplaceAccount.objects.create(
        channel_account=channel_account, marketplace="wildberries", api_key="wb-key-0123456789"
    )
    context = {"rating": rating, "product_name": "Икра горбуши 250 г", "offer_id": "MR-00001", "cons": "Мелкая"}
    question, _ = accept_incoming(
        IncomingMessage(
            channel="wildberries",
            dialog_id="review:r-1",
            message_id="r-1",
            text="Икра мелкая, не понравилась",
            account_id=channel_account.pk,
            channel_data={"stream": "reviews", "thread_id": "r-1", "context": context},
        )
    )
    conversation = question.conversation
    reply = record_outgoing(conversation=conversation, text=draft, in_reply_to=question, draft=True)
    hand_off(conversation=conversation, reason="a marketplace buyer's low rating: never answered automatically")
    return conversation, reply


def dialog_page(client, conversation) -> str:
    return client.get(reverse("inbox:dialog", args=[conversation.pk])).content.decode()


def test_a_review_shows_its_marketplace_account_product_and_stars(staff):
    conversation, _ = review_with_draft()

    page = dialog_page(staff, conversation)

    assert "Морской WB" in page
    assert "Икра горбуши 250 г (MR-00001)" in page
    assert "2 ★" in page


def test_the_draft_waits_beside_the_reply_box_and_nothing_was_sent(staff, locmem_channels):
    conversation, _ = review_with_draft()

    page = dialog_page(staff, conversation)

    assert 'id="pending-draft"' in page
    assert "Нам очень жаль, разберёмся." in page
    assert locmem_channels.outbox == []


def test_an_approved_draft_goes_out_once_as_edited(staff, locmem_channels):
    conversation, draft = review_with_draft()
    url = reverse("inbox:action", args=[conversation.pk, "approve"])
    form = {"draft": draft.pk, "text": "Нам жаль. Заменим банку — напишите в чат заказа."}

    staff.post(url, form)
    staff.post(url, form)

    assert [m.text for m in locmem_channels.outbox] == ["Нам жаль. Заменим банку — напишите в чат заказа."]
    draft.refresh_from_db()
    assert draft.delivery_state == Message.Delivery.SENT
    assert draft.operator.get_username() == "olga"


def test_a_discarded_draft_is_never_sent(staff, locmem_channels):
    conversation, draft = review_with_draft()

    staff.post(reverse("inbox:action", args=[conversation.pk, "discard"]), {"draft": draft.pk})
    staff.post(reverse("inbox:action", args=[conversation.pk, "approve"]), {"draft": draft.pk})

    draft.refresh_from_db()
    assert draft.delivery_state == Message.Delivery.DISCARDED
    assert locmem_channels.outbox == []
    assert 'id="pending-draft"' not in dialog_page(staff, conversation)


def test_the_list_names_the_account_and_the_review(staff):
    review_with_draft(rating=1)

    page = staff.get(reverse("inbox:list")).content.decode()

    assert "Морской WB" in page
    assert "1★" in page
    assert Conversation.objects.get().state == Conversation.State.OPERATOR


FEEDBACKS_API = "https://feedbacks-api.wildberries.ru"


def sent_review_answer():
    from django.utils import timezone

    conversation, draft = review_with_draft(rating=5, draft="Спасибо за отзыв!")
    Message.objects.filter(pk=draft.pk).update(delivery_state=Message.Delivery.SENT, delivered_at=timezone.now())
    return conversation, draft


def test_a_wildberries_review_answer_is_changed_once(staff):
    import json

    import responses

    conversation, answer = sent_review_answer()
    url = reverse("inbox:action", args=[conversation.pk, "edit_answer"])
    assert url in dialog_page(staff, conversation)
    with responses.RequestsMock() as wb:
        wb.patch(f"{FEEDBACKS_API}/api/v1/feedbacks/answer", json={"data": None, "error": False})
        staff.post(url, {"text": "Спасибо за отзыв! Рады, что понравилось."})
        staff.post(url, {"text": "Третья версия"})

        (call,) = wb.calls
    assert json.loads(call.request.body) == {"id": "r-1", "text": "Спасибо за отзыв! Рады, что понравилось."}
    answer.refresh_from_db()
    assert answer.text == "Спасибо за отзыв! Рады, что понравилось."
    assert "/edit_answer/" not in dialog_page(staff, conversation)
