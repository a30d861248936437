from django.urls import path

from integrations.telegram import views

app_name = "telegram"

urlpatterns = [
    path("webhook", views.bot_webhook, name="webhook"),
    path("<slug:key>/webhook", views.bot_webhook, name="account-webhook"),
]
