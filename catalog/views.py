from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from catalog.models import ScrapeRun
from catalog.scrape import ScrapeAlreadyRunning, enqueue_scrape
from catalog.search import search_products
from catalog.selectors import catalog_stats
from catalog.serializers import (
    CatalogSearchInputSerializer,
    CatalogSearchOutputSerializer,
    CatalogStatsOutputSerializer,
    ScrapeRunInputSerializer,
    ScrapeRunSerializer,
)
from config.api import ApiTokenAuthentication, IsStaff


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


class ScrapeRunCreateApi(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsStaff]
    parser_classes = [JSONParser]
    # Each run reads the whole store from Tilda: a caller in a loop must not queue hundreds.
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "scrape"

    @extend_schema(
        request=ScrapeRunInputSerializer,
        responses={202: ScrapeRunSerializer, 409: None, 429: None},
        description="Queue a Tilda import (staff session or `Authorization: Bearer <API_TOKEN>`).",
    )
    def post(self, request):
        params = ScrapeRunInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            run = enqueue_scrape(triggered_by="api", **params.validated_data)
        except ScrapeAlreadyRunning as exc:
            body = {"error": str(exc), "active_run": exc.active.pk if exc.active else None}
            return Response(body, status=409)
        return Response(ScrapeRunSerializer(run).data, status=202)


class ScrapeRunDetailApi(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsStaff]

    @extend_schema(responses={200: ScrapeRunSerializer}, description="A Tilda import run and its counts.")
    def get(self, request, run_id: int):
        run = get_object_or_404(ScrapeRun, pk=run_id)
        return Response(ScrapeRunSerializer(run).data)
