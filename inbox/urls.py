from django.urls import path

from inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.dialog_list, name="list"),
    path("rows/", views.dialog_rows, name="rows"),
    path("reports/", views.reports, name="reports"),
    path("<int:pk>/", views.dialog_detail, name="dialog"),
    path("<int:pk>/updates/", views.dialog_updates, name="updates"),
    path("<int:pk>/draft/", views.dialog_draft, name="draft"),
    path("<int:pk>/<slug:action>/", views.dialog_action, name="action"),
]
