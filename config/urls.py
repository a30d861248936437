from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import HealthApi
from conversations.channels import registry

urlpatterns = [
    path("health", HealthApi.as_view(), name="health"),
    path("catalog/", include("catalog.urls")),
    path("api/orders/", include("orders.urls")),
    path("inbox/", include("inbox.urls")),
    path("api/inbox/", include("inbox.api_urls")),
    # Each channel's webhooks, from the channel registry (integrations/registry.py);
    # channels that share a URL module (the marketplaces) mount it once.
    *(path(prefix, include(module)) for prefix, module in dict.fromkeys(e.urls for e in registry() if e.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
