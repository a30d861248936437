"""manage.py marketplace_account: add, list, check, resume and remove marketplace accounts.

Keys never come from the command line (argv shows in `ps` and shell
history): from an environment variable (--api-key-env VAR), from stdin
(--api-key-stdin), or typed at a hidden prompt when run in a terminal.
Nothing here prints a key or the push URL's secret.

    OZON_KEY=... manage.py marketplace_account add ozon --name "Морской магазин" \\
        --client-id 1943218 --api-key-env OZON_KEY
    manage.py marketplace_account list
    manage.py marketplace_account check 3
"""

import getpass
import os
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from integrations.marketplaces import services
from integrations.marketplaces.models import Marketplace, MarketplaceAccount, Mode

KEYS = {
    "api_key": "API key",
    "feedbacks_api_key": "questions and reviews key (Wildberries)",
}


class Command(BaseCommand):
    help = "Add, list, check, resume and remove marketplace accounts (Ozon, Wildberries, Yandex Market)."
    # Tests and scripts hand a stream in place of the process's stdin, as createsuperuser allows.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{add,list,check,resume,remove}")

        add = actions.add_parser("add", help="Add an account; keys from the environment or stdin, never argv.")
        add.add_argument("marketplace", choices=Marketplace.values)
        add.add_argument("--name", required=True)
        add.add_argument("--key", default="", help="the channel account's key; default: a slug of the name")
        add.add_argument("--client-id", default="", help="Ozon Client-Id")
        add.add_argument("--token-type", default="", help="Wildberries token type (personal, service, base)")
        add.add_argument("--business-id", default="", help="Yandex Market businessId")
        add.add_argument(
            "--campaign-id", action="append", default=[], dest="campaign_ids", help="Yandex Market campaign id"
        )
        add.add_argument("--base-url", default="", help="API address; default: the marketplace's own")
        add.add_argument("--feedbacks-base-url", default="", help="Wildberries questions and reviews API address")
        for stream in ("chat", "questions", "reviews"):
            add.add_argument(f"--{stream}-mode", choices=Mode.values, default=Mode.DRAFT)
        add.add_argument("--poll-interval", type=int, default=60, help="seconds between polls")
        for name, label in KEYS.items():
            option = name.replace("_", "-")
            add.add_argument(f"--{option}-env", metavar="VAR", help=f"read the {label} from this environment variable")
            add.add_argument(f"--{option}-stdin", action="store_true", help=f"read the {label} from a line of stdin")

        actions.add_parser("list", help="List accounts (no keys).")
        for action, text in (
            ("check", "Ask the marketplace whether the account's key works; stores the result."),
            ("resume", "Poll a stopped account again."),
            ("remove", "Remove an account (its conversations stay)."),
        ):
            actions.add_parser(action, help=text).add_argument("id", type=int)

    def handle(self, *args, action, **options):
        self.stdin = options.get("stdin") or sys.stdin
        getattr(self, f"handle_{action}")(**options)

    def handle_add(self, *, marketplace, name, key, poll_interval, **options):
        account = MarketplaceAccount(
            marketplace=marketplace,
            client_id=options["client_id"],
            token_type=options["token_type"],
            business_id=options["business_id"],
            campaign_ids=[str(i) for i in options["campaign_ids"]],
            base_url=options["base_url"],
            feedbacks_base_url=options["feedbacks_base_url"],
            chat_mode=options["chat_mode"],
            questions_mode=options["questions_mode"],
            reviews_mode=options["reviews_mode"],
            poll_interval_s=poll_interval,
        )
        for field, label in KEYS.items():
            setattr(account, field, self._read_key(field, label, options, marketplace))
        try:
            services.create_account(account, name=name, key=key)
        except ValidationError as exc:
            raise CommandError(_errors(exc)) from None
        self.stdout.write(
            f"created account {account.pk}: {account.get_marketplace_display()}, "
            f"key {account.channel_account.key}, API key {_set(account.api_key)}. "
            f"Check it: manage.py marketplace_account check {account.pk}; "
            "the push URL is on the account's admin page."
        )

    def handle_list(self, **options):
        accounts = MarketplaceAccount.objects.select_related("channel_account").order_by("pk")
        if not accounts:
            self.stdout.write("no marketplace accounts")
        for account in accounts:
            if account.stopped_at:
                state = f"stopped: {account.stop_reason}"
            elif account.read_only_reason:
                state = f"read-only: {account.read_only_reason}"
            else:
                state = "working"
            checked = account.key_checked_at.isoformat(timespec="seconds") if account.key_checked_at else "never"
            self.stdout.write(
                f"{account.pk}\t{account.marketplace}\t{account.channel_account.key}\t"
                f"{account.channel_account.name}\tchat={account.chat_mode} questions={account.questions_mode} "
                f"reviews={account.reviews_mode}\tAPI key {_set(account.api_key)}\t"
                f"key checked {checked}\t{state}"
            )

    def handle_check(self, *, id, **options):
        result = services.check_key(_account(id))
        if not result.ok:
            raise CommandError(f"key check failed: {result.detail}")
        self.stdout.write(f"key works: {result.detail}")

    def handle_resume(self, *, id, **options):
        services.resume(_account(id))
        self.stdout.write(f"account {id} resumed")

    def handle_remove(self, *, id, **options):
        account = _account(id)
        channel_account = account.channel_account
        with transaction.atomic():
            account.delete()
            if channel_account.conversations.exists():
                # Conversations keep their channel account (PROTECT): it stays, switched off.
                channel_account.is_active = False
                channel_account.save(update_fields=["is_active"])
                kept = "; its channel account stays, inactive, for its conversations"
            else:
                channel_account.delete()
                kept = ""
        self.stdout.write(f"account {id} removed{kept}")

    def _read_key(self, field: str, label: str, options: dict, marketplace: str) -> str:
        option = field.replace("_", "-")
        variable = options[f"{field}_env"]
        if variable:
            if variable not in os.environ:
                raise CommandError(f"environment variable {variable} is not set")
            return os.environ[variable].strip()
        if options[f"{field}_stdin"]:
            return self.stdin.readline().strip()
        if field == "feedbacks_api_key" and marketplace != Marketplace.WILDBERRIES:
            return ""
        if self.stdin.isatty():
            return getpass.getpass(f"{label} (empty for none): ").strip()
        if field == "api_key":
            self.stderr.write(f"no {label} given (--{option}-env or --{option}-stdin): the account has none yet")
        return ""


def _account(pk: int) -> MarketplaceAccount:
    try:
        return MarketplaceAccount.objects.select_related("channel_account").get(pk=pk)
    except MarketplaceAccount.DoesNotExist:
        raise CommandError(f"no marketplace account {pk}") from None


def _set(value: str) -> str:
    return "set" if value else "not set"


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(exc.messages)
