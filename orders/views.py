from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import ApiTokenAuthentication, IsStaff, error_headers, error_responses
from orders.selectors import MAX_NUMBER, order_by_number, orders_list
from orders.serializers import OrderListInputSerializer, OrderListOutputSerializer, OrderSerializer

# Every status each view answers, besides 405 for another method and 406 for an Accept it cannot serve.
LIST_ERRORS = (400, 401, 403)
DETAIL_ERRORS = (401, 403, 404)


class OrderListApi(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="orders_list",
        parameters=[OrderListInputSerializer, *error_headers(*LIST_ERRORS)],
        responses={200: OrderListOutputSerializer, **error_responses(*LIST_ERRORS)},
        description="Orders, newest first (staff session or `Authorization: Bearer <API_TOKEN>`).",
    )
    def get(self, request):
        params = OrderListInputSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        found = orders_list(state=params.validated_data.get("state", ""))
        start = params.validated_data["offset"]
        page = found[start : start + params.validated_data["limit"]]
        return Response(OrderListOutputSerializer({"count": found.count(), "results": page}).data)


class OrderDetailApi(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsStaff]

    @extend_schema(
        operation_id="orders_retrieve",
        parameters=[
            OpenApiParameter("number", {"type": "integer", "minimum": 1, "maximum": MAX_NUMBER}, OpenApiParameter.PATH),
            *error_headers(*DETAIL_ERRORS),
        ],
        responses={200: OrderSerializer, **error_responses(*DETAIL_ERRORS)},
        description="One order by its number, with its lines.",
    )
    def get(self, request, number: int):
        order = order_by_number(number)
        if order is None:
            raise Http404("no such order")
        return Response(OrderSerializer(order).data)
