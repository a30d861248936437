import os
import sys
import uuid

from django.core.management.base import BaseCommand

from conversations.models import Channel, Conversation
from conversations.services import get_or_create_conversation, record_incoming
from integrations.answering import respond


class Command(BaseCommand):
    help = "Разговор с ассистентом в командной строке: одно сообщение или диалог."

    def add_arguments(self, parser):
        parser.add_argument("text", nargs="*", help="Сообщение; без него — диалог с приглашением «вы>».")
        parser.add_argument("--dialog", help="Id диалога, чтобы продолжить прежний разговор.")

    def handle(self, *args, text=(), dialog=None, **options):
        try:
            self._chat(text=text, dialog=dialog)
            self.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`manage.py chat … | head -1`): stop without a
            # traceback. stdout goes to devnull so that the interpreter's last
            # flush at exit does not fail again (the Python docs' recipe for SIGPIPE).
            _stdout_to_devnull()
            sys.exit(1)

    def _chat(self, *, text, dialog) -> None:
        conversation = get_or_create_conversation(
            channel=Channel.CLI, external_id=dialog or f"cli-{uuid.uuid4().hex[:8]}", customer_name="cli"
        )
        if text:
            self._say(conversation, " ".join(text))
            return
        self.stdout.write(f"Диалог {conversation.external_id}. Пустая строка или Ctrl-D — выход.")
        while True:
            try:
                line = input("вы> ").strip()
            except (EOFError, KeyboardInterrupt):
                self.stdout.write("")
                break
            if not line:
                break
            self._say(conversation, line)

    def _say(self, conversation: Conversation, text: str) -> None:
        message, _ = record_incoming(conversation=conversation, text=text)
        reply = respond(message)
        if reply is None:
            self.stdout.write(self.style.WARNING("(диалог ведёт оператор: бот не отвечает)"))
            return
        self.stdout.write(f"бот [{reply.get_reply_kind_display()}]> {reply.text}")
        products = list(reply.products.all())
        if products:
            self.stdout.write("  товары: " + "; ".join(f"{p.title} (id {p.pk})" for p in products))


def _stdout_to_devnull() -> None:
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests' StringIO)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)
