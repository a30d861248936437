from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.search import search_products
from catalog.selectors import catalog_stats
from catalog.serializers import (
    CatalogSearchInputSerializer,
    CatalogSearchOutputSerializer,
    CatalogStatsOutputSerializer,
)


class CatalogSearchApi(APIView):
    authentication_classes = []
    permission_classes = []

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True, description="What the customer is looking for."),
            OpenApiParameter("limit", int, required=False, description="1..50, default 10."),
        ],
        responses={200: CatalogSearchOutputSerializer},
        description="Products matching a customer's words: stemming, typos, synonyms, SKUs.",
    )
    def get(self, request):
        params = CatalogSearchInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data["q"]
        products = search_products(query, limit=params.validated_data["limit"])
        return Response(CatalogSearchOutputSerializer({"query": query, "results": products}).data)


class CatalogStatsApi(APIView):
    authentication_classes = []
    permission_classes = []

    @extend_schema(responses={200: CatalogStatsOutputSerializer}, description="Size and freshness of the catalog.")
    def get(self, request):
        return Response(CatalogStatsOutputSerializer(catalog_stats()).data)
