import re
import uuid

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_field, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Left, NullIf
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from conversations.channels import DeliveryError, registry, sender_for
from conversations.models import Conversation, Message
from conversations.services import close, return_to_bot, send_operator_reply, take_over

# Badge colours that read on both the light and the dark admin theme.
STATE_COLOURS = {
    Conversation.State.BOT: "#417690",
    Conversation.State.OPERATOR: "#c05b00",
    Conversation.State.CLOSED: "#767676",
}

# The list fits 1,366 px: a dialog's last words and its customer's name are cut short.
PREVIEW_CHARS = 60
CUSTOMER_CHARS = 40

# The facts shown above the transcript, in this order.
SUMMARY_FIELDS = [
    "channel",
    "external_id",
    "customer_name",
    "customer_external_id",
    "state",
    "assigned_operator",
    "handed_off_at",
    "created_at",
]


# A customer's file is served from our admin's origin: only media is shown
# inline, as its own type; anything else (an HTML or SVG file a customer sent)
# downloads as bytes, so it never runs as a page of the admin.
_INLINE_TYPE = re.compile(r"^(audio|video)/[\w.+-]+$|^image/(png|jpeg|gif|webp)$")
_UNSAFE_FILENAME = re.compile(r"[^\w.\- ]+")


def _safe_filename(name, fallback: str) -> str:
    name = _UNSAFE_FILENAME.sub("_", str(name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip(" ._")
    return name[:100] or fallback


class ChannelFilter(admin.SimpleListFilter):
    """Channels from the registry that are set up or have dialogs; not every channel the model knows."""

    title = _("channel")
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        used = set(Conversation.objects.order_by().values_list("channel", flat=True).distinct())
        return [(entry.code, entry.label) for entry in registry() if entry.code in used or entry.is_configured()]

    def queryset(self, request, queryset):
        return queryset.filter(channel=self.value()) if self.value() else queryset


def _messages_of_row():
    return Message.objects.filter(conversation=OuterRef("pk"))


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Dialogs with customers: a list to find them, a transcript page to read and answer them."""

    list_display = [
        "channel",
        "customer",
        "state_badge",
        "assigned_operator",
        "last_message_at",
        "message_count",
        "last_message_preview",
    ]
    list_filter = [
        ChannelFilter,
        "account",
        "state",
        ("assigned_operator", admin.RelatedOnlyFieldListFilter),
        "last_message_at",
    ]
    list_select_related = ["assigned_operator"]
    search_fields = ["customer_name", "customer_external_id", "external_id", "messages__text"]
    # Dialogs without messages yet have no time; they go last on every database.
    ordering = [F("last_message_at").desc(nulls_last=True), "-id"]
    actions = ["take_over_selected", "return_selected_to_bot", "close_selected"]

    def get_queryset(self, request):
        # Correlated subqueries rather than Count over a join: the message
        # search joins messages too, and a join-based count would be multiplied
        # by the number of matching messages.
        count = _messages_of_row().order_by().values("conversation").annotate(n=Count("pk")).values("n")
        preview = (
            _messages_of_row()
            .order_by("-created_at", "-id")
            .values(
                # A voice message reads as its transcript.
                text_start=Left(Coalesce(NullIf("text", Value("")), "transcript"), PREVIEW_CHARS + 1)
            )
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                message_count=Coalesce(Subquery(count, output_field=IntegerField()), 0),
                last_message_text=Subquery(preview[:1]),
            )
        )

    def has_add_permission(self, request):
        # Dialogs start in a channel, never in admin.
        return False

    @admin.display(description=_("customer"), ordering="customer_name")
    def customer(self, conversation):
        name = conversation.customer_name or conversation.customer_external_id
        if not name:
            return self.get_empty_value_display()
        return Truncator(name).chars(CUSTOMER_CHARS)

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, conversation):
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;white-space:nowrap">{}</span>',
            STATE_COLOURS.get(conversation.state, "#767676"),
            conversation.get_state_display(),
        )

    @admin.display(description=_("messages"), ordering="message_count")
    def message_count(self, conversation):
        return conversation.message_count

    @admin.display(description=_("last message text"))
    def last_message_preview(self, conversation):
        if not conversation.last_message_text:
            return self.get_empty_value_display()
        return Truncator(conversation.last_message_text).chars(PREVIEW_CHARS)

    # Bulk actions -----------------------------------------------------------

    @admin.action(description=_("Take over selected conversations"), permissions=["change"])
    def take_over_selected(self, request, queryset):
        conversations = list(queryset)
        for conversation in conversations:
            take_over(conversation=conversation, operator=request.user)
        self.message_user(request, _("Conversations taken over: %(count)d.") % {"count": len(conversations)})

    @admin.action(description=_("Return selected conversations to the bot"), permissions=["change"])
    def return_selected_to_bot(self, request, queryset):
        conversations = list(queryset)
        for conversation in conversations:
            return_to_bot(conversation=conversation)
        self.message_user(request, _("Conversations returned to the bot: %(count)d.") % {"count": len(conversations)})

    @admin.action(description=_("Close selected conversations"), permissions=["change"])
    def close_selected(self, request, queryset):
        conversations = list(queryset)
        for conversation in conversations:
            close(conversation=conversation)
        self.message_user(request, _("Conversations closed: %(count)d.") % {"count": len(conversations)})

    # The conversation page --------------------------------------------------

    def get_urls(self):
        def post_only(view):
            return self.admin_site.admin_view(require_POST(view))

        return [
            path(
                "<path:object_id>/take-over/",
                post_only(self.take_over_view),
                name="conversations_conversation_take_over",
            ),
            path(
                "<path:object_id>/return-to-bot/",
                post_only(self.return_to_bot_view),
                name="conversations_conversation_return_to_bot",
            ),
            path("<path:object_id>/close/", post_only(self.close_view), name="conversations_conversation_close"),
            path("<path:object_id>/reply/", post_only(self.reply_view), name="conversations_conversation_reply"),
            path(
                "<path:object_id>/media/<int:message_id>/<int:index>/",
                self.admin_site.admin_view(self.media_view),
                name="conversations_conversation_media",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The transcript instead of a form: messages are history, not something staff edit.

        Changes happen through the buttons and the reply box, which post to
        their own views.
        """
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        conversation = self._conversation_to_view(request, object_id)
        transcript = conversation.messages.select_related("operator").prefetch_related("products")
        user = request.user
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": str(conversation),
            "conversation": conversation,
            "summary": self._summary(conversation),
            "transcript": transcript,
            "can_change": self.has_change_permission(request, conversation),
            "is_my_conversation": (
                conversation.state == Conversation.State.OPERATOR and conversation.assigned_operator_id == user.pk
            ),
            # Product links lead to a 403 for staff who may not see the catalog.
            "can_view_products": user.has_perm("catalog.view_product") or user.has_perm("catalog.change_product"),
            # One token per reply box: a double submit of the same reply sends it once.
            "reply_token": uuid.uuid4().hex,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/conversations/conversation/transcript.html", context)

    def _summary(self, conversation):
        rows = []
        for name in SUMMARY_FIELDS:
            field = Conversation._meta.get_field(name)
            if name == "state":
                value = self.state_badge(conversation)
            else:
                value = display_for_field(getattr(conversation, name), field, self.get_empty_value_display())
            rows.append((capfirst(field.verbose_name), value))
        return rows

    def _conversation_to_view(self, request, object_id):
        conversation = self.get_object(request, unquote(object_id))
        if conversation is None:
            raise Http404
        if not self.has_view_or_change_permission(request, conversation):
            raise PermissionDenied
        return conversation

    def _conversation_to_change(self, request, object_id):
        conversation = self.get_object(request, unquote(object_id))
        if conversation is None:
            raise Http404
        if not self.has_change_permission(request, conversation):
            raise PermissionDenied
        return conversation

    def _back_to(self, conversation):
        return redirect(reverse("admin:conversations_conversation_change", args=[conversation.pk]))

    def take_over_view(self, request, object_id):
        conversation = self._conversation_to_change(request, object_id)
        take_over(conversation=conversation, operator=request.user)
        messages.success(request, _("You answer this conversation now; the bot keeps silent."))
        return self._back_to(conversation)

    def return_to_bot_view(self, request, object_id):
        conversation = self._conversation_to_change(request, object_id)
        return_to_bot(conversation=conversation)
        messages.success(request, _("The bot answers this conversation again."))
        return self._back_to(conversation)

    def close_view(self, request, object_id):
        conversation = self._conversation_to_change(request, object_id)
        close(conversation=conversation)
        messages.success(request, _("The conversation is closed."))
        return self._back_to(conversation)

    def reply_view(self, request, object_id):
        conversation = self._conversation_to_change(request, object_id)
        text = request.POST.get("text", "").strip()
        if not text:
            messages.error(request, _("The reply is empty; nothing was sent."))
            return self._back_to(conversation)
        reply = send_operator_reply(
            conversation=conversation,
            operator=request.user,
            text=text,
            client_token=request.POST.get("client_token", ""),
        )
        if reply.delivery_state == Message.Delivery.FAILED:
            # Saved in the transcript either way; staff must know the customer has not got it.
            messages.warning(
                request,
                _("The reply is saved but did not reach the customer: %(error)s") % {"error": reply.delivery_error},
            )
        else:
            messages.success(request, _("Reply sent."))
        return self._back_to(conversation)

    def media_view(self, request, object_id, message_id, index):
        """A customer's file (a voice message to play) fetched from its channel.

        404 when the conversation, message or attachment does not exist; 502
        when the channel cannot give the file (it may have expired there).
        """
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        conversation = self._conversation_to_view(request, object_id)
        message = conversation.messages.filter(pk=message_id).first()
        attachments = message.attachments if message is not None else []
        if not isinstance(attachments, list) or index >= len(attachments) or not isinstance(attachments[index], dict):
            raise Http404
        attachment = attachments[index]
        try:
            media = sender_for(conversation.channel).fetch_media(message, attachment, max_bytes=settings.STT_MAX_BYTES)
        except DeliveryError as exc:
            return HttpResponse(
                _("The channel did not give the file: %(error)s") % {"error": exc},
                status=502,
                content_type="text/plain; charset=utf-8",
            )
        mime_type = (media.mime_type or str(attachment.get("mime_type") or "")).split(";")[0].strip().lower()
        inline = bool(_INLINE_TYPE.match(mime_type))
        response = HttpResponse(media.content, content_type=mime_type if inline else "application/octet-stream")
        filename = _safe_filename(media.filename or attachment.get("file_name"), f"file-{message.pk}-{index}")
        response["Content-Disposition"] = content_disposition_header(as_attachment=not inline, filename=filename)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; media-src 'self'; sandbox"
        response["Cache-Control"] = "private, no-store"
        return response
