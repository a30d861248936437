"""The inbox's API: the dialogs with the inbox's filters, a dialog's messages, an operator's reply, take /
return / close, the canned replies and the channel accounts (without secrets). Staff sessions with an inbox
role, or the API token (a machine: its replies have no operator)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import ApiTokenAuthentication, ServiceAccount, error_headers, error_responses
from conversations import services
from conversations.models import ChannelAccount, Conversation, Message
from inbox import roles
from inbox.models import CannedReply
from inbox.selectors import dialog_messages, inbox_dialogs
from inbox.serializers import (
    CannedReplySerializer,
    ChannelAccountSerializer,
    ChannelAccountUpdateSerializer,
    DialogActionInputSerializer,
    DialogListInputSerializer,
    DialogListOutputSerializer,
    DialogSerializer,
    DraftActionInputSerializer,
    MessageListInputSerializer,
    MessageListOutputSerializer,
    MessageSerializer,
    ReplyInputSerializer,
)

READ_ERRORS = (400, 401, 403)
DIALOG_ERRORS = (400, 401, 403, 404)
WRITE_ERRORS = (400, 401, 403, 404, 413, 415)
DIALOG_ID = OpenApiParameter("pk", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, OpenApiParameter.PATH)
DRAFT_ID = OpenApiParameter(
    "message_id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, OpenApiParameter.PATH
)


class InboxRole(BasePermission):
    """Staff with an inbox role; the API token's machine too."""

    message = "Only the store's operators, managers and administrators may use the inbox."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ServiceAccount) or roles.is_operator(request.user)


def _operator(request):
    return None if isinstance(request.user, ServiceAccount) else request.user


class InboxApi(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [InboxRole]


class DialogListApi(InboxApi):
    @extend_schema(
        operation_id="inbox_dialogs_list",
        parameters=[DialogListInputSerializer, *error_headers(*READ_ERRORS)],
        responses={200: DialogListOutputSerializer, **error_responses(*READ_ERRORS)},
        description="Dialogs of every channel, those waiting for an operator first, with the inbox's filters.",
    )
    def get(self, request):
        params = DialogListInputSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        data = params.validated_data
        found = inbox_dialogs(
            user=_operator(request), show=data["show"], channel=data.get("channel", ""), query=data.get("q", "")
        )
        page = found[data["offset"] : data["offset"] + data["limit"]]
        return Response(DialogListOutputSerializer({"count": found.count(), "results": page}).data)


class DialogApi(InboxApi):
    @extend_schema(
        operation_id="inbox_dialogs_action",
        parameters=[DIALOG_ID, *error_headers(*WRITE_ERRORS)],
        request=DialogActionInputSerializer,
        responses={200: DialogSerializer, **error_responses(*WRITE_ERRORS)},
        description="Take the dialog (it becomes yours), return it to the bot, or close it.",
    )
    def post(self, request, pk: int):
        conversation = get_object_or_404(Conversation, pk=pk)
        body = DialogActionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        action = body.validated_data["action"]
        if action == "take":
            services.take_over(conversation=conversation, operator=_operator(request))
        elif action == "return":
            services.return_to_bot(conversation=conversation)
        else:
            services.close(conversation=conversation)
        dialog = inbox_dialogs(user=_operator(request)).get(pk=conversation.pk)
        return Response(DialogSerializer(dialog).data)


class DialogMessagesApi(InboxApi):
    @extend_schema(
        operation_id="inbox_messages_list",
        parameters=[DIALOG_ID, MessageListInputSerializer, *error_headers(*DIALOG_ERRORS)],
        responses={200: MessageListOutputSerializer, **error_responses(*DIALOG_ERRORS)},
        description="The dialog's messages in order; with `after`, only the newer ones (for polling).",
    )
    def get(self, request, pk: int):
        conversation = get_object_or_404(Conversation, pk=pk)
        params = MessageListInputSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        messages = dialog_messages(conversation, after=params.validated_data["after"])
        return Response(MessageListOutputSerializer({"results": messages}).data)

    @extend_schema(
        operation_id="inbox_messages_create",
        parameters=[DIALOG_ID, *error_headers(*WRITE_ERRORS)],
        request=ReplyInputSerializer,
        responses={201: MessageSerializer, **error_responses(*WRITE_ERRORS)},
        description="An operator's answer, sent to the customer's channel (the dialog becomes the operator's).",
    )
    def post(self, request, pk: int):
        conversation = get_object_or_404(Conversation, pk=pk)
        body = ReplyInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token = body.validated_data["client_token"] or request.headers.get("Idempotency-Key", "")
        if len(token) > 64:
            raise ValidationError({"client_token": "at most 64 characters"})
        message = services.send_operator_reply(
            conversation=conversation,
            operator=_operator(request),
            text=body.validated_data["text"].strip(),
            client_token=token,
        )
        return Response(MessageSerializer(message).data, status=201)


class DraftApi(InboxApi):
    @extend_schema(
        operation_id="inbox_drafts_action",
        parameters=[DIALOG_ID, DRAFT_ID, *error_headers(*WRITE_ERRORS)],
        request=DraftActionInputSerializer,
        responses={200: MessageSerializer, **error_responses(*WRITE_ERRORS)},
        description=(
            "The bot's draft in a dialog: approve (sent once, as edited) or discard (never sent). "
            "404 when it is not a draft any more."
        ),
    )
    def post(self, request, pk: int, message_id: int):
        draft = get_object_or_404(Message, pk=message_id, conversation_id=pk, delivery_state=Message.Delivery.DRAFT)
        body = DraftActionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data["action"] == "discard":
            services.discard_draft(message=draft)
            draft.refresh_from_db()
        else:
            draft = services.approve_draft(message=draft, operator=_operator(request), text=body.validated_data["text"])
        return Response(MessageSerializer(draft).data)


class CannedReplyListApi(InboxApi):
    @extend_schema(
        operation_id="inbox_canned_replies_list",
        parameters=[*error_headers(401, 403)],
        responses={200: CannedReplySerializer(many=True), **error_responses(401, 403)},
        description="The active canned replies, in their order.",
    )
    def get(self, request):
        return Response(CannedReplySerializer(CannedReply.objects.filter(is_active=True), many=True).data)


class ChannelAccountListApi(InboxApi):
    @extend_schema(
        operation_id="inbox_accounts_list",
        parameters=[*error_headers(401, 403)],
        responses={200: ChannelAccountSerializer(many=True), **error_responses(401, 403)},
        description="The channel accounts (bots, portals, marketplace accounts), without their secrets.",
    )
    def get(self, request):
        return Response(ChannelAccountSerializer(ChannelAccount.objects.order_by("channel", "key"), many=True).data)


class Administrator(BasePermission):
    message = "Only administrators may change channel accounts."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ServiceAccount) or roles.is_administrator(request.user)


class ChannelAccountApi(InboxApi):
    permission_classes = [InboxRole, Administrator]

    @extend_schema(
        operation_id="inbox_accounts_partial_update",
        parameters=[DIALOG_ID, *error_headers(*WRITE_ERRORS)],
        request=ChannelAccountUpdateSerializer,
        responses={200: ChannelAccountSerializer, **error_responses(*WRITE_ERRORS)},
        description="Rename an account, set its operators' chat, switch it on or off (administrators; no secrets).",
    )
    def patch(self, request, pk: int):
        account = get_object_or_404(ChannelAccount, pk=pk)
        body = ChannelAccountUpdateSerializer(account, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        body.save()
        return Response(ChannelAccountSerializer(account).data)
