"""Register the chat bot on a Bitrix24 portal, or bring its settings up to date.

Safe to run again: a bot that exists (B24_IMBOT_ID, or its code in
imbot.bot.list) is updated with imbot.update, and imbot.command.register
returns the existing command when the bot already has it.

TYPE "B" with OPENLINE "Y" rather than "O": a "B" bot answers in ordinary
chats and, with OPENLINE, in Open Lines too; an "O" bot serves Open Lines only
and is installed silently. imbot.update cannot change TYPE or OPENLINE later
(im 17.5.10), so the wider type is the default; --type O is there for portals
that want the bot in Open Lines only.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.bitrix24.client import Bitrix24Client, Bitrix24Error
from integrations.bitrix24.formatting import ASK_COMMAND, OPERATOR_COMMAND
from integrations.bitrix24.models import Portal

EVENTS_PATH = "/b24/imbot/events"
BOT_COLOR = "AZURE"

# The keyboard's commands (formatting.reply_keyboard). LANG needs at least "en"
# and "de" (other languages fall back to them); "ru" is what our users read.
COMMANDS = [
    {
        "COMMAND": OPERATOR_COMMAND,
        "HIDDEN": "N",
        "LANG": [
            {"LANGUAGE_ID": "ru", "TITLE": "Позвать оператора"},
            {"LANGUAGE_ID": "en", "TITLE": "Call an operator"},
            {"LANGUAGE_ID": "de", "TITLE": "Einen Mitarbeiter rufen"},
        ],
    },
    {
        # Only pressed on a button, never typed: hidden from the command list.
        "COMMAND": ASK_COMMAND,
        "HIDDEN": "Y",
        "LANG": [
            {"LANGUAGE_ID": "ru", "TITLE": "Задать вопрос", "PARAMS": "вопрос"},
            {"LANGUAGE_ID": "en", "TITLE": "Ask a question", "PARAMS": "question"},
            {"LANGUAGE_ID": "de", "TITLE": "Eine Frage stellen", "PARAMS": "Frage"},
        ],
    },
]


class Command(BaseCommand):
    help = "Register the Bitrix24 chat bot (or update it) and its keyboard commands; prints the bot id."

    def add_arguments(self, parser):
        parser.add_argument(
            "--member-id",
            default="",
            help="Portal (member id) of an installed OAuth application; without it, B24_WEBHOOK_URL is used.",
        )
        parser.add_argument(
            "--type",
            dest="bot_type",
            choices=["B", "O"],
            default="B",
            help="B: ordinary chats and Open Lines (default); O: Open Lines only. Used on first registration only.",
        )
        parser.add_argument(
            "--allow-http",
            action="store_true",
            help="Accept a PUBLIC_URL that is not https (a test portal reaching a tunnel).",
        )

    def handle(self, *args, member_id="", bot_type="B", allow_http=False, **options):
        events_url = self._events_url(allow_http)
        try:
            client = Bitrix24Client.for_member(member_id)
            bot_id = self._register_or_update(client, events_url, bot_type=bot_type)
            for command in COMMANDS:
                params = {**self._identity(client, bot_id), **command, "COMMON": "N", "EVENT_COMMAND_ADD": events_url}
                client.call("imbot.command.register", params)
        except Bitrix24Error as exc:
            raise CommandError(f"Bitrix24: {exc}") from None
        if client.portal is not None and client.portal.bot_id != str(bot_id):
            Portal.objects.filter(pk=client.portal.pk).update(bot_id=str(bot_id))
        self.stdout.write(f"Bot id: {bot_id}")
        self.stdout.write(f"Events go to {events_url}")
        if str(settings.B24_IMBOT_ID) != str(bot_id):
            self.stdout.write(f"Set B24_IMBOT_ID={bot_id} in the environment.")

    def _events_url(self, allow_http: bool) -> str:
        public_url = settings.PUBLIC_URL.rstrip("/")
        parts = urlsplit(public_url)
        if not parts.netloc:
            raise CommandError(f"PUBLIC_URL {public_url!r} is not an absolute URL.")
        # Bitrix24 posts events from the internet; plain http would carry the
        # event's OAuth tokens in the clear.
        if parts.scheme != "https" and not allow_http:
            raise CommandError(f"PUBLIC_URL {public_url!r} is not https; use --allow-http for a test portal.")
        return public_url + EVENTS_PATH

    def _register_or_update(self, client, events_url: str, *, bot_type: str) -> int:
        fields = {
            "CODE": settings.B24_IMBOT_CODE,
            "EVENT_MESSAGE_ADD": events_url,
            "EVENT_WELCOME_MESSAGE": events_url,
            "EVENT_BOT_DELETE": events_url,
            "PROPERTIES": {"NAME": settings.B24_IMBOT_NAME, "COLOR": BOT_COLOR},
        }
        bot_id = settings.B24_IMBOT_ID or self._registered_bot_id(client)
        if bot_id and not str(bot_id).isdigit():
            raise CommandError(f"B24_IMBOT_ID {bot_id!r} is not a number.")
        if bot_id:
            client.call("imbot.update", {**self._identity(client, bot_id), "FIELDS": fields})
            self.stdout.write(f"Updated bot {settings.B24_IMBOT_CODE!r}.")
            return int(bot_id)
        params = {**fields, "TYPE": bot_type, "OPENLINE": "Y"}
        if settings.B24_IMBOT_CLIENT_ID and client.portal is None:
            params["CLIENT_ID"] = settings.B24_IMBOT_CLIENT_ID
        bot_id = client.call("imbot.register", params)
        if not bot_id:
            raise CommandError("Bitrix24 returned no bot id.")
        self.stdout.write(f"Registered bot {settings.B24_IMBOT_CODE!r}.")
        return int(bot_id)

    def _registered_bot_id(self, client) -> str:
        """The id of this application's bot with our code, from imbot.bot.list ("" if none)."""
        bots = client.call("imbot.bot.list") or {}
        for bot in bots.values() if isinstance(bots, dict) else bots:
            if isinstance(bot, dict) and bot.get("CODE") == settings.B24_IMBOT_CODE:
                return str(bot.get("ID") or "")
        return ""

    def _identity(self, client, bot_id) -> dict:
        identity = {"BOT_ID": int(bot_id)}
        # A bot registered through a webhook is known by its CLIENT_ID.
        if settings.B24_IMBOT_CLIENT_ID and client.portal is None:
            identity["CLIENT_ID"] = settings.B24_IMBOT_CLIENT_ID
        return identity
