from django.contrib import admin
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _

from bots.models import AssistantSettings


@admin.register(AssistantSettings)
class AssistantSettingsAdmin(admin.ModelAdmin):
    """One row: the list page opens it directly."""

    fieldsets = [
        (_("LLM"), {"fields": ["llm_enabled", "provider", "model", "temperature"]}),
        (_("Store and tone"), {"fields": ["store_name", "tone", "policies"]}),
        (
            _("Operator handoff"),
            {
                "fields": [
                    "handoff_words",
                    "handoff_text",
                    "waiting_text",
                    ("operators_from", "operators_until"),
                    "operator_weekdays",
                    "contacts",
                ]
            },
        ),
        (_("Channel texts"), {"fields": ["welcome_text", "media_text", "voice_failed_text", "voice_too_long_text"]}),
        (_("Guardrails"), {"fields": ["banned_phrases", "max_reply_chars"]}),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:bots_assistantsettings_change", AssistantSettings.load().pk)
