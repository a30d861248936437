"""The inbox's API: filters, messages, replies, take / return / close, canned replies, accounts; who may call it."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from conversations.models import ChannelAccount, Conversation, Message
from conversations.services import account_for, hand_off
from inbox import roles
from tests.factories import make_conversation, make_message

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_channels")]

TOKEN = "inbox-api-token"


def user(name="olga", role=roles.OPERATORS):
    person = get_user_model().objects.create_user(name, password="pw", is_staff=True)
    if role:
        person.groups.add(Group.objects.get(name=roles.GROUP_NAMES[role]))
    return person


@pytest.fixture
def operator(db):
    return user()


@pytest.fixture
def api(operator):
    client = APIClient()
    client.force_authenticate(operator)
    return client


@pytest.fixture
def machine(settings):
    settings.API_TOKEN = TOKEN
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return client


def waiting(name="Анна", text="Позовите менеджера"):
    conversation = make_conversation("telegram", customer_name=name)
    make_message(conversation, text)
    hand_off(conversation=conversation, reason="asked")
    return conversation


def test_dialogs_are_listed_waiting_first(api):
    make_message(make_conversation(customer_name="Борис"), "Есть икра?")
    waiting("Анна")

    body = api.get("/api/inbox/dialogs/").json()

    assert [d["customer_name"] for d in body["results"]] == ["Анна", "Борис"]
    assert body["results"][0]["waiting"] is True and body["count"] == 2


def test_the_list_filters_by_channel(api):
    waiting("Анна")
    make_message(make_conversation("bitrix24", customer_name="Вера"), "Привет")

    body = api.get("/api/inbox/dialogs/", {"channel": "bitrix24"}).json()

    assert [d["customer_name"] for d in body["results"]] == ["Вера"]


def test_a_bad_filter_is_a_400_naming_it(api):
    response = api.get("/api/inbox/dialogs/", {"show": "everything", "limit": 0})

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"show", "limit"}


def test_messages_after_an_id_are_only_the_newer_ones(api):
    conversation = waiting()
    first = conversation.messages.order_by("id").first()

    body = api.get(f"/api/inbox/dialogs/{conversation.pk}/messages/", {"after": first.pk}).json()

    ids = [m["id"] for m in body["results"]]
    assert first.pk not in ids
    assert ids == list(conversation.messages.filter(pk__gt=first.pk).order_by("id").values_list("id", flat=True))


def test_a_reply_is_sent_to_the_customer_and_the_dialog_becomes_mine(api, operator, locmem_channels):
    conversation = waiting()

    response = api.post(f"/api/inbox/dialogs/{conversation.pk}/messages/", {"text": "Здравствуйте!"}, format="json")

    assert response.status_code == 201
    assert response.json()["operator"] == "olga"
    assert locmem_channels.outbox[-1].text == "Здравствуйте!"
    conversation.refresh_from_db()
    assert conversation.assigned_operator == operator


def test_a_reply_repeated_with_its_idempotency_key_is_sent_once(api, locmem_channels):
    conversation = waiting()
    url = f"/api/inbox/dialogs/{conversation.pk}/messages/"

    first = api.post(url, {"text": "Здравствуйте!"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(url, {"text": "Здравствуйте!"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.json()["id"] == again.json()["id"]
    assert [m.text for m in locmem_channels.outbox] == ["Здравствуйте!"]


def test_replies_with_different_tokens_are_both_sent(api, locmem_channels):
    conversation = waiting()
    url = f"/api/inbox/dialogs/{conversation.pk}/messages/"

    api.post(url, {"text": "Минуту", "client_token": "a"}, format="json")
    api.post(url, {"text": "Минуту", "client_token": "b"}, format="json")

    assert [m.text for m in locmem_channels.outbox] == ["Минуту", "Минуту"]


def test_an_empty_reply_is_a_400_and_sends_nothing(api, locmem_channels):
    conversation = waiting()
    sent = len(locmem_channels.outbox)

    response = api.post(f"/api/inbox/dialogs/{conversation.pk}/messages/", {"text": ""}, format="json")

    assert response.status_code == 400
    assert len(locmem_channels.outbox) == sent


@pytest.mark.parametrize(("action", "state"), [("take", "operator"), ("return", "bot"), ("close", "closed")])
def test_the_dialog_is_taken_returned_or_closed(api, action, state):
    conversation = waiting()

    response = api.post(f"/api/inbox/dialogs/{conversation.pk}/", {"action": action}, format="json")

    assert response.status_code == 200 and response.json()["state"] == state
    assert Conversation.objects.get(pk=conversation.pk).state == state


def test_an_unknown_dialog_is_a_404(api):
    assert api.get("/api/inbox/dialogs/999999/messages/").status_code == 404


def test_canned_replies_are_listed(api):
    titles = [c["title"] for c in api.get("/api/inbox/canned-replies/").json()]

    assert "Уточню и вернусь" in titles


def test_accounts_are_listed_without_their_secrets(api):
    account = account_for("telegram")
    ChannelAccount.objects.filter(pk=account.pk).update(token="123:SECRET-token", webhook_secret="hook-secret")

    body = api.get("/api/inbox/accounts/")

    assert body.json()[0]["has_token"] is True
    assert "SECRET" not in body.content.decode() and "hook-secret" not in body.content.decode()


def test_staff_without_an_inbox_role_get_a_403(db):
    client = APIClient()
    client.force_authenticate(user("intern", role=None))

    assert client.get("/api/inbox/dialogs/").status_code == 403


def test_no_credentials_is_a_401(db):
    assert APIClient().get("/api/inbox/dialogs/").status_code == 401


def test_the_api_token_replies_as_the_store_without_an_operator(machine, locmem_channels):
    conversation = waiting()

    response = machine.post(f"/api/inbox/dialogs/{conversation.pk}/messages/", {"text": "Ответ"}, format="json")

    assert response.status_code == 201 and response.json()["operator"] is None
    assert Message.objects.filter(author=Message.Author.OPERATOR, operator=None).count() == 1


def test_an_administrator_renames_an_account_and_its_secrets_stay(db):
    account = account_for("telegram")
    ChannelAccount.objects.filter(pk=account.pk).update(token="123:SECRET-token")
    client = APIClient()
    client.force_authenticate(user("admin", role=roles.ADMINISTRATORS))

    response = client.patch(f"/api/inbox/accounts/{account.pk}/", {"name": "Бот магазина", "token": "x"}, format="json")

    account.refresh_from_db()
    assert response.status_code == 200 and response.json()["name"] == "Бот магазина"
    assert account.token == "123:SECRET-token"
    assert "SECRET" not in response.content.decode()


def test_an_operator_cannot_change_an_account(api):
    account = account_for("telegram")

    assert api.patch(f"/api/inbox/accounts/{account.pk}/", {"is_active": False}, format="json").status_code == 403


def marketplace_draft():
    from conversations.services import record_outgoing
    from integrations.marketplaces.models import MarketplaceAccount

    channel_account = ChannelAccount.objects.create(channel="ozon", key="ozon-shop", name="Ozon")
    MarketplaceAccount.objects.create(
        channel_account=channel_account, marketplace="ozon", client_id="1943218", api_key="secret-ozon-key-0001"
    )
    conversation = make_conversation("ozon", customer_name="Покупатель")
    Conversation.objects.filter(pk=conversation.pk).update(account=channel_account)
    conversation.refresh_from_db()
    question = make_message(conversation, "Мидии варёные?")
    draft = record_outgoing(conversation=conversation, text="Да, варёно-мороженые.", in_reply_to=question, draft=True)
    hand_off(conversation=conversation, reason="draft mode")
    return conversation, draft


def test_a_draft_approved_through_the_api_is_sent_once_as_edited(api, locmem_channels):
    conversation, draft = marketplace_draft()
    url = f"/api/inbox/dialogs/{conversation.pk}/drafts/{draft.pk}/"

    first = api.post(url, {"action": "approve", "text": "Да, варёно-мороженые, 500 г."}, format="json")
    again = api.post(url, {"action": "approve"}, format="json")

    assert first.status_code == 200 and again.status_code == 404
    assert [m.text for m in locmem_channels.outbox] == ["Да, варёно-мороженые, 500 г."]


def test_a_draft_discarded_through_the_api_is_never_sent(api, locmem_channels):
    conversation, draft = marketplace_draft()

    url = f"/api/inbox/dialogs/{conversation.pk}/drafts/{draft.pk}/"

    response = api.post(url, {"action": "discard"}, format="json")

    assert response.json()["delivery_state"] == "discarded"
    assert locmem_channels.outbox == []


def test_a_marketplace_account_is_listed_with_its_settings_and_without_its_key(api):
    marketplace_draft()

    body = api.get("/api/inbox/accounts/").json()

    (ozon,) = [a for a in body if a["key"] == "ozon-shop"]
    assert ozon["marketplace"]["client_id"] == "1943218"
    assert ozon["marketplace"]["has_api_key"] is True
    assert "secret-ozon-key-0001" not in json.dumps(body)


def test_an_administrator_switches_a_marketplace_stream_to_automatic_answers(db):
    from integrations.marketplaces.models import MarketplaceAccount

    marketplace_draft()
    admin = APIClient()
    admin.force_authenticate(user("anna", roles.ADMINISTRATORS))
    account = ChannelAccount.objects.get(channel="ozon", key="ozon-shop")

    response = admin.patch(f"/api/inbox/accounts/{account.pk}/", {"marketplace": {"chat_mode": "auto"}}, format="json")

    assert response.status_code == 200
    assert MarketplaceAccount.objects.get(channel_account=account).chat_mode == "auto"
