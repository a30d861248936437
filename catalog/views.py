from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from catalog.models import ScrapeRun
from catalog.query import find_products
from catalog.scrape import ScrapeAlreadyRunning, enqueue_scrape
from catalog.selectors import catalog_stats
from catalog.serializers import (
    CatalogSearchInputSerializer,
    CatalogSearchOutputSerializer,
    CatalogStatsOutputSerializer,
    ScrapeConflictSerializer,
    ScrapeRunInputSerializer,
    ScrapeRunSerializer,
)
from config.api import ApiTokenAuthentication, IsStaff, error_headers, error_responses

# Every status each view answers, besides 405 for another method and 406 for an Accept it cannot serve.
SCRAPE_CREATE_ERRORS = (400, 401, 403, 413, 415, 429)
SCRAPE_DETAIL_ERRORS = (401, 403, 404)


class CatalogSearchApi(APIView):
    authentication_classes = []
    permission_classes = []

    @extend_schema(
        parameters=[CatalogSearchInputSerializer],
        responses={200: CatalogSearchOutputSerializer, **error_responses(400)},
        description=(
            "Products matching a customer's words: stemming, typos, synonyms, SKUs. A price limit or range "
            "(«до 1000», «от 500 до 1000 рублей») and a pack size («1 кг») in the words are read as the bot "
            "reads them: only products within the price, and of that size when any has it."
        ),
    )
    def get(self, request):
        # A plain dict: `limit=` is a wrong value, not an absent one (see the serializer).
        params = CatalogSearchInputSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        query = params.validated_data["q"]
        found = find_products(query, limit=params.validated_data["limit"])
        price = found.price
        output = {
            "query": query,
            "price_min": price.low if price else None,
            "price_max": price.high if price else None,
            "pack_size": found.size,
            "results": found.products,
        }
        return Response(CatalogSearchOutputSerializer(output).data)


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
        parameters=error_headers(*SCRAPE_CREATE_ERRORS),
        responses={
            202: ScrapeRunSerializer,
            409: ScrapeConflictSerializer,
            **error_responses(*SCRAPE_CREATE_ERRORS),
        },
        description="Queue a Tilda import (staff session or `Authorization: Bearer <API_TOKEN>`); "
        "409 while another run is queued or running.",
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

    @extend_schema(
        parameters=[
            OpenApiParameter("run_id", {"type": "integer", "minimum": 1}, OpenApiParameter.PATH),
            *error_headers(*SCRAPE_DETAIL_ERRORS),
        ],
        responses={200: ScrapeRunSerializer, **error_responses(*SCRAPE_DETAIL_ERRORS)},
        description="A Tilda import run and its counts.",
    )
    def get(self, request, run_id: int):
        run = get_object_or_404(ScrapeRun, pk=run_id)
        return Response(ScrapeRunSerializer(run).data)
