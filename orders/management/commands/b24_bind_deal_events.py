"""Have Bitrix24 post deal changes (ONCRMDEALUPDATE) to PUBLIC_URL/b24/crm/events.

An OAuth application binds the handler itself (event.bind, per installed
portal). An inbound webhook cannot: the portal's admin creates an outgoing
webhook for the event instead (Applications > Developers > Outgoing webhook),
and B24_CRM_EVENTS_TOKEN is set to the token Bitrix24 shows for it; the
command then says so. Safe to run again.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from integrations.bitrix24.client import Bitrix24Client, Bitrix24Error
from integrations.bitrix24.crm_events import DEAL_UPDATE
from integrations.bitrix24.models import Portal


class Command(BaseCommand):
    help = "Bind ONCRMDEALUPDATE to this service on each portal the app is on (or say how to, with a webhook)."

    def add_arguments(self, parser):
        parser.add_argument("--member-id", default="", help="Only this portal (member id).")
        parser.add_argument(
            "--allow-http", action="store_true", help="Accept a PUBLIC_URL that is not https (a tunnel for a test)."
        )

    def handle(self, *args, member_id="", allow_http=False, **options):
        handler = settings.PUBLIC_URL.rstrip("/") + reverse("bitrix24:crm-events")
        if urlsplit(handler).scheme != "https" and not allow_http:
            raise CommandError(f"Bitrix24 posts events over https only; PUBLIC_URL gives {handler}")
        portals = Portal.objects.exclude(access_token="").order_by("domain")
        if member_id:
            portals = portals.filter(member_id=member_id)
        if not portals:
            self.stdout.write(
                "No OAuth application is installed. With an inbound webhook, create an outgoing webhook on the "
                f"portal for {DEAL_UPDATE} with the handler {handler}, and set B24_CRM_EVENTS_TOKEN to its token."
            )
            return
        failed = 0
        for portal in portals:
            try:
                Bitrix24Client.for_portal(portal).call("event.bind", {"event": DEAL_UPDATE, "handler": handler})
            except Bitrix24Error as exc:
                if "already" in f"{exc.code} {exc.description}".lower():
                    self.stdout.write(f"{portal.domain}: {DEAL_UPDATE} already goes to {handler}")
                    continue
                failed += 1
                self.stderr.write(f"{portal.domain}: not bound ({exc.code})")
                continue
            self.stdout.write(f"{portal.domain}: {DEAL_UPDATE} now goes to {handler}")
        if failed:
            raise CommandError(f"{failed} portal(s) not bound")
