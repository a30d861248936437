import uuid

from django.core.management.base import BaseCommand

from conversations.models import Channel, Conversation
from conversations.services import get_or_create_conversation, record_incoming
from integrations.answering import respond


class Command(BaseCommand):
    help = "Talk to the assistant on the command line: one message, or an interactive dialog."

    def add_arguments(self, parser):
        parser.add_argument("text", nargs="*", help="A message; without it, an interactive prompt.")
        parser.add_argument("--dialog", help="Dialog id, to continue an earlier conversation.")

    def handle(self, *args, text=(), dialog=None, **options):
        conversation = get_or_create_conversation(
            channel=Channel.CLI, external_id=dialog or f"cli-{uuid.uuid4().hex[:8]}", customer_name="cli"
        )
        if text:
            self._say(conversation, " ".join(text))
            return
        self.stdout.write(f"Dialog {conversation.external_id}. Empty line or Ctrl-D ends it.")
        while True:
            try:
                line = input("вы> ").strip()
            except EOFError:
                break
            if not line:
                break
            self._say(conversation, line)

    def _say(self, conversation: Conversation, text: str) -> None:
        message, _ = record_incoming(conversation=conversation, text=text)
        reply = respond(message)
        if reply is None:
            self.stdout.write(self.style.WARNING("(the dialog is with an operator: the bot does not answer)"))
            return
        self.stdout.write(f"бот [{reply.get_reply_kind_display()}]> {reply.text}")
        products = list(reply.products.all())
        if products:
            self.stdout.write("  товары: " + "; ".join(f"{p.title} (id {p.pk})" for p in products))
