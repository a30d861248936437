from django.urls import path

from catalog.views import CatalogSearchApi, CatalogStatsApi, ScrapeRunCreateApi, ScrapeRunDetailApi

app_name = "catalog"

urlpatterns = [
    path("search", CatalogSearchApi.as_view(), name="search"),
    path("stats", CatalogStatsApi.as_view(), name="stats"),
    path("scrape", ScrapeRunCreateApi.as_view(), name="scrape"),
    path("scrape/<int:run_id>", ScrapeRunDetailApi.as_view(), name="scrape-run"),
]
