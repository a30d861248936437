import io
import os
import subprocess
import sys
from pathlib import Path

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
    assert "(диалог ведёт оператор: бот не отвечает)" in out


def test_the_command_speaks_russian(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("есть икра кеты?\n\n"))
    out = io.StringIO()

    call_command("chat", dialog="d-ru", stdout=out)

    text = out.getvalue()
    assert text.startswith("Диалог d-ru. Пустая строка или Ctrl-D — выход.")
    assert "бот [" in text
    assert "\n  товары: " in text
    assert "Dialog" not in text and "ends it" not in text


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def migrated_data_dir(tmp_path):
    """A SQLite DATA_DIR of its own for a `manage.py` child, never the test run's or a developer's database."""
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "LLM_PROVIDER": "",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    return env


def test_a_reader_that_goes_away_ends_the_dialog_without_a_traceback(migrated_data_dir, tmp_path):
    # `… | manage.py chat | head -1`: the dialog goes on writing after its reader has closed the pipe.
    questions = tmp_path / "questions.txt"
    questions.write_text("есть икра?\n" * 50, encoding="utf-8")
    errors = tmp_path / "stderr.txt"
    with questions.open("rb") as stdin, errors.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "manage.py", "chat"],
            cwd=ROOT,
            env=migrated_data_dir,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        first_line = child.stdout.readline().decode()
        child.stdout.close()
        returncode = child.wait(timeout=120)

    assert first_line.startswith("Диалог ")
    assert "Traceback" not in errors.read_text(encoding="utf-8", errors="replace")
    assert "BrokenPipeError" not in errors.read_text(encoding="utf-8", errors="replace")
    assert returncode in (0, 1)
