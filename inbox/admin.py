from django.contrib import admin

from inbox.models import CannedReply, Holiday, SlaPolicy, WorkingHours


@admin.register(WorkingHours)
class WorkingHoursAdmin(admin.ModelAdmin):
    """Seven rows, one per weekday (seeded); a day off is marked closed, not deleted."""

    list_display = ["weekday", "is_closed", "opens_at", "closes_at"]
    list_display_links = ["weekday"]
    list_editable = ["is_closed", "opens_at", "closes_at"]

    def has_add_permission(self, request):
        return super().has_add_permission(request) and WorkingHours.objects.count() < 7

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ["date", "name", "is_closed", "opens_at", "closes_at"]
    list_editable = ["is_closed", "opens_at", "closes_at"]
    date_hierarchy = "date"
    search_fields = ["name"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "first_response_minutes", "next_response_minutes"]
    list_editable = ["first_response_minutes", "next_response_minutes"]


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "shortcut", "is_active", "sort_order"]
    list_editable = ["is_active", "sort_order"]
    search_fields = ["title", "shortcut", "text"]
