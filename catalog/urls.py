from django.urls import path

from catalog.views import CatalogSearchApi, CatalogStatsApi

app_name = "catalog"

urlpatterns = [
    path("search", CatalogSearchApi.as_view(), name="search"),
    path("stats", CatalogStatsApi.as_view(), name="stats"),
]
