from django.urls import path

from integrations.bitrix24 import views

app_name = "bitrix24"

urlpatterns = [
    path("imbot/events", views.imbot_events, name="imbot-events"),
    path("install", views.install, name="install"),
    path("oauth/callback", views.oauth_callback, name="oauth-callback"),
]
