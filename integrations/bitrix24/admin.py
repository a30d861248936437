from django.contrib import admin
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from integrations.bitrix24.models import Portal

ERROR_PREVIEW_CHARS = 80


@admin.register(Portal)
class PortalAdmin(admin.ModelAdmin):
    """Portals the bot is installed on: to see, never to edit.

    Installation writes these rows. `fields` is an allow-list so the OAuth
    tokens — and any secret field added later — never reach a page.
    """

    list_display = ["domain", "member_id", "token_expires_at", "last_error_preview", "bot_id", "updated_at"]
    search_fields = ["domain", "member_id"]
    fields = [
        "domain",
        "member_id",
        "client_endpoint",
        "scope",
        "bot_id",
        "token_expires_at",
        "last_error",
        "installed_at",
        "updated_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("last error"), ordering="last_error")
    def last_error_preview(self, portal):
        if not portal.last_error:
            return self.get_empty_value_display()
        return Truncator(portal.last_error).chars(ERROR_PREVIEW_CHARS)
