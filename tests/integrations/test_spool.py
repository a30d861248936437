"""Webhook events taken while the database is down: kept in the spool, answered 200,
replayed once it is back, recorded and answered once (integrations.spool)."""

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django_q.conf import Conf

from conversations.channels import outbox
from conversations.models import Message
from integrations import recovery, spool

pytestmark = pytest.mark.usefixtures("demo_store", "locmem_channels", "worker")

B24_URL = "/b24/imbot/events"
B24_FIXTURES = Path(__file__).parent / "bitrix24" / "fixtures"
B24_TOKEN = "3c8f1a2b9d7e4f60a5b4c3d2e1f09876"  # the application token in the recorded events
TG_URL = "/tg/webhook"
TG_FIXTURES = Path(__file__).parent / "telegram" / "fixtures"
TG_SECRET = "tg-webhook-secret-0123456789"


@pytest.fixture(autouse=True)
def channels_configured(settings):
    settings.B24_APPLICATION_TOKEN = B24_TOKEN
    settings.TELEGRAM_BOT_TOKEN = "6891234567:AAHk-test-token-abcdefghijklmnopqrs"
    settings.TELEGRAM_WEBHOOK_SECRET = TG_SECRET


@pytest.fixture
def worker(monkeypatch):
    """Queued tasks run at once, inside the request."""
    monkeypatch.setattr(Conf, "SYNC", True)


def post_b24(client, name: str = "message_add.txt", *, body: bytes | None = None):
    data = (B24_FIXTURES / name).read_bytes().strip() if body is None else body
    return client.post(B24_URL, data=data, content_type="application/x-www-form-urlencoded")


def post_tg(client, name: str = "message_text.json", *, secret: str = TG_SECRET):
    data = (TG_FIXTURES / name).read_text()
    return client.post(TG_URL, data=data, content_type="application/json", HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=secret)


def customer_messages():
    return Message.objects.filter(author=Message.Author.CUSTOMER)


def spooled_files(settings) -> list[Path]:
    return sorted((Path(settings.SPOOL_DIR) / "new").glob("*.event"))


def test_an_event_the_database_cannot_take_is_kept_and_acknowledged(client, database_outage, settings):
    outage = database_outage()

    response = post_b24(client)

    assert response.status_code == 200
    outage.end()
    assert spool.pending() == 1
    assert not customer_messages().exists()
    assert outbox == []


def test_a_kept_bitrix24_event_is_recorded_and_answered_once_the_database_is_back(client, database_outage):
    outage = database_outage()
    post_b24(client)
    outage.end()

    result = spool.replay()

    assert (result.replayed, result.pending) == (1, 0)
    message = customer_messages().get()
    assert message.text == "Здравствуйте! Есть креветки?"
    assert len(outbox) == 1
    assert outbox[0].dialog == message.conversation.external_id


def test_a_kept_telegram_update_is_recorded_and_answered_once_the_database_is_back(client, database_outage):
    outage = database_outage()
    assert post_tg(client).status_code == 200
    outage.end()

    spool.replay()

    assert customer_messages().count() == 1
    assert len(outbox) == 1


def test_an_event_replayed_twice_is_recorded_and_answered_once(client, database_outage, settings, tmp_path):
    """A replay cut short between recording an event and deleting its file replays it again."""
    outage = database_outage()
    post_b24(client)
    outage.end()
    [kept] = spooled_files(settings)
    copy = shutil.copy(kept, tmp_path / kept.name)

    spool.replay()
    shutil.copy(copy, kept)
    result = spool.replay()

    assert result.replayed == 1
    assert customer_messages().count() == 1
    assert len(outbox) == 1


def test_an_event_that_came_again_live_is_not_answered_again_on_replay(client, database_outage):
    outage = database_outage()
    post_b24(client)
    outage.end()
    post_b24(client)  # Telegram (and a retrying proxy) may send it again once the database is back

    spool.replay()

    assert customer_messages().count() == 1
    assert len(outbox) == 1


def test_events_are_replayed_in_the_order_they_came(client, database_outage):
    outage = database_outage()
    first = (B24_FIXTURES / "message_add.txt").read_bytes().strip()
    second = first.replace(b"MESSAGE_ID%5D=33899", b"MESSAGE_ID%5D=33900").replace(
        b"MESSAGE%5D=%D0%97%D0%B4", b"MESSAGE%5D=%D0%90+%D0%97%D0%B4"
    )
    post_b24(client, body=first)
    post_b24(client, body=second)
    outage.end()

    spool.replay()

    texts = list(customer_messages().order_by("pk").values_list("text", flat=True))
    assert texts == ["Здравствуйте! Есть креветки?", "А Здравствуйте! Есть креветки?"]


def test_the_spool_keeps_no_token_in_the_clear(client, database_outage, settings):
    outage = database_outage()
    post_b24(client)
    post_tg(client)
    outage.end()

    kept = b"".join(path.read_bytes() for path in spooled_files(settings))

    assert len(spooled_files(settings)) == 2
    assert B24_TOKEN.encode() not in kept
    assert b"bot0acc3ss" not in kept
    assert TG_SECRET.encode() not in kept


def forged_b24(client):
    forged = (B24_FIXTURES / "message_add.txt").read_bytes().strip().replace(B24_TOKEN.encode(), b"f" * 32)
    return post_b24(client, body=forged)


@pytest.mark.parametrize("send_forged", [forged_b24, lambda client: post_tg(client, secret="forged")])
def test_a_forged_event_kept_during_an_outage_is_dropped_on_replay(client, database_outage, send_forged):
    """A portal's or a bot's secret is read from the database: during an outage it cannot be checked before keeping."""
    outage = database_outage()
    assert send_forged(client).status_code == 200
    outage.end()

    result = spool.replay()

    assert (result.refused, result.pending) == (1, 0)
    assert not Message.objects.exists()


def test_an_event_is_503_when_neither_the_database_nor_the_spool_can_take_it(client, database_outage, settings):
    settings.SPOOL_MAX_BYTES = 0
    database_outage()

    response = post_b24(client)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "error" in response.json()


def test_an_unwritable_spool_is_503_not_500(client, database_outage, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.SPOOL_DIR = str(blocker / "spool")  # under a file: every write fails
    database_outage()

    response = post_tg(client)

    assert response.status_code == 503
    assert response["Retry-After"]


def test_a_replay_stopped_by_the_database_failing_again_keeps_the_event(client, database_outage):
    database_outage()
    post_b24(client)

    result = spool.replay()

    assert result.stopped
    assert result.pending == 1


def test_an_unreadable_spool_file_is_set_aside_not_replayed_for_ever(client, database_outage, settings):
    outage = database_outage()
    post_b24(client)
    outage.end()
    [kept] = spooled_files(settings)
    kept.write_bytes(b"not an encrypted record")

    result = spool.replay()

    assert (result.failed, result.pending) == (1, 0)
    assert (Path(settings.SPOOL_DIR) / "failed" / kept.name).exists()
    assert spool.replay().failed == 0


def test_replay_spool_command_replays_what_was_kept(client, database_outage, capsys):
    outage = database_outage()
    post_b24(client)
    outage.end()

    call_command("replay_spool")

    assert "1 replayed" in capsys.readouterr().out
    assert customer_messages().count() == 1


def test_the_sweep_replays_the_spool_before_it_sweeps(client, database_outage):
    from integrations import tasks

    outage = database_outage()
    post_b24(client)
    outage.end()

    tasks.sweep_unanswered()

    assert customer_messages().count() == 1
    assert len(outbox) == 1


def test_the_catch_up_round_replays_and_reports_nothing_left(client, database_outage):
    outage = database_outage()
    post_tg(client)
    outage.end()

    assert recovery.catch_up_once() is True
    assert customer_messages().count() == 1


def test_a_spooled_event_body_is_kept_as_received(client, database_outage, settings):
    """A JSON event too: the replayed request is the one that came, not a re-encoding of it."""
    outage = database_outage()
    payload = json.loads((TG_FIXTURES / "message_text.json").read_text())
    payload["message"]["text"] = "Есть ли \u00abмидии\u00bb?"
    client.post(
        TG_URL,
        data=json.dumps(payload, ensure_ascii=False),
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=TG_SECRET,
    )
    outage.end()

    spool.replay()

    assert customer_messages().get().text == "Есть ли «мидии»?"


def test_a_json_bitrix24_event_kept_during_an_outage_is_recorded_once(client, database_outage):
    from integrations.bitrix24.events import parse_form

    event = parse_form((B24_FIXTURES / "message_add.txt").read_bytes().strip())
    outage = database_outage()
    response = client.post(B24_URL, data=json.dumps(event), content_type="application/json")
    outage.end()

    spool.replay()
    spool.replay()

    assert response.status_code == 200
    assert customer_messages().count() == 1


def test_a_button_press_kept_during_an_outage_is_taken_in_once(client, database_outage, locmem_channels):
    outage = database_outage()
    assert post_tg(client, "callback_query_operator.json").status_code == 200
    outage.end()

    spool.replay()

    assert Message.objects.filter(reply_kind=Message.ReplyKind.HANDOFF).count() == 1
    assert len(locmem_channels.handoffs) == 1
