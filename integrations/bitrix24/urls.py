from django.urls import path

from integrations.bitrix24 import crm_events, views

app_name = "bitrix24"

urlpatterns = [
    path("imbot/events", views.imbot_events, name="imbot-events"),
    path("crm/events", crm_events.deal_events, name="crm-events"),
    path("install", views.install, name="install"),
    path("oauth/callback", views.oauth_callback, name="oauth-callback"),
]
