from django.urls import path

from integrations.marketplaces import views

app_name = "marketplaces"

urlpatterns = [path("<int:account_id>/<str:secret>/", views.push, name="push")]
