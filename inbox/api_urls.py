from django.urls import path

from inbox import api

urlpatterns = [
    path("dialogs/", api.DialogListApi.as_view(), name="inbox-api-dialogs"),
    path("dialogs/<int:pk>/", api.DialogApi.as_view(), name="inbox-api-dialog"),
    path("dialogs/<int:pk>/messages/", api.DialogMessagesApi.as_view(), name="inbox-api-messages"),
    path("dialogs/<int:pk>/drafts/<int:message_id>/", api.DraftApi.as_view(), name="inbox-api-draft"),
    path("canned-replies/", api.CannedReplyListApi.as_view(), name="inbox-api-canned"),
    path("accounts/", api.ChannelAccountListApi.as_view(), name="inbox-api-accounts"),
    path("accounts/<int:pk>/", api.ChannelAccountApi.as_view(), name="inbox-api-account"),
]
