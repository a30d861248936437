import io

import pytest
from django.core.management import call_command

from conversations.models import Conversation, Message

pytestmark = pytest.mark.usefixtures("demo_store")


def test_one_message_prints_the_reply_and_its_products(capsys):
    call_command("chat", "Какая", "икра", "есть", "в", "наличии?")

    out = capsys.readouterr().out
    assert "Вот что есть в наличии" in out
    assert "товары: Икра" in out
    assert Conversation.objects.get().channel == "cli"


def test_dialog_id_continues_a_conversation(capsys):
    call_command("chat", "привет", dialog="d-1")
    call_command("chat", "сколько стоит доставка?", dialog="d-1")

    conversation = Conversation.objects.get(external_id="d-1")
    assert conversation.messages.filter(author=Message.Author.BOT).count() == 2


def test_interactive_dialog_keeps_one_conversation(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("привет\nоператор\nесть икра?\n\n"))

    call_command("chat")

    out = capsys.readouterr().out
    conversation = Conversation.objects.get()
    assert conversation.state == Conversation.State.OPERATOR
    assert conversation.messages.filter(direction=Message.Direction.IN).count() == 3
    assert "the bot does not answer" in out
