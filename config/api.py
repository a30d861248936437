"""API-wide conventions: every error is JSON of the shape {"error": "...", ...}.

What the schema says is what the views enforce: `error_responses()` documents
the error answers an endpoint gives with the one error shape below, and
`StrictBooleanField` takes only a JSON true or false.
"""

import hmac

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        # Django would answer an HTML 400 page; the limit is DATA_UPLOAD_MAX_MEMORY_SIZE.
        return Response({"error": "body too large"}, status=413)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        response.data = {"error": str(data["detail"])}
    elif isinstance(data, dict):
        response.data = {"error": "invalid request", "fields": data}
    else:
        response.data = {"error": "invalid request", "details": data}
    return response


class ServiceAccount:
    """The caller behind a valid API_TOKEN: a machine with staff rights."""

    is_authenticated = True
    is_active = True
    is_staff = True
    is_superuser = False
    pk = None
    username = "api-token"

    def __str__(self) -> str:
        return self.username


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <API_TOKEN>`; a wrong token is refused outright."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        keyword, _, token = header.partition(" ")
        if keyword != self.keyword:
            return None
        expected = settings.API_TOKEN
        if not expected or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            raise AuthenticationFailed("invalid API token")
        return ServiceAccount(), None

    def authenticate_header(self, request):
        return self.keyword


class IsStaff(BasePermission):
    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How ApiTokenAuthentication appears in the OpenAPI schema."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "API_TOKEN from the server's settings"}


class NoNulCharField(OpenApiSerializerFieldExtension):
    """Every CharField refuses NUL characters (DRF adds the validator); a request string declares it.

    `+`, not `*`: drf-spectacular offers a blank string as a oneOf alternative
    when blank is allowed, and the two must not both match "".
    """

    target_class = serializers.CharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        refuses_nul = any(isinstance(v, ProhibitNullCharactersValidator) for v in self.target.validators)
        if direction == "request" and refuses_nul and schema.get("type") == "string" and "pattern" not in schema:
            schema["pattern"] = r"^[^\u0000]+$"
        return schema


class ApiErrorSerializer(serializers.Serializer):
    """The body of an error answer."""

    error = serializers.CharField(help_text="What went wrong, for a person to read.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Invalid request: each invalid parameter or body field with its messages.",
    )


ERROR_DESCRIPTIONS = {
    400: "Invalid parameters or body; `fields` names each invalid one.",
    401: "No credentials, or a wrong API token.",
    403: "Signed in but not staff, or a session POST without its CSRF token.",
    404: "No such object.",
    413: "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    415: "The body is not `application/json`.",
    429: "Too many requests from this caller; `Retry-After` says in how many seconds to try again.",
}

# Headers that come with some error answers.
RESPONSE_HEADERS = {
    401: OpenApiParameter(
        "WWW-Authenticate",
        str,
        OpenApiParameter.HEADER,
        response=[401],
        description="`Bearer` on an endpoint that takes the API token.",
    ),
    429: OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429], description="Seconds to wait."),
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema responses for the error answers an endpoint gives, all of the ApiError shape."""
    return {status: OpenApiResponse(ApiErrorSerializer, description=ERROR_DESCRIPTIONS[status]) for status in statuses}


def error_headers(*statuses: int) -> list[OpenApiParameter]:
    """The response headers that come with those of `statuses` that have one."""
    return [RESPONSE_HEADERS[status] for status in statuses if status in RESPONSE_HEADERS]


class StrictBooleanField(serializers.BooleanField):
    """A JSON `true` or `false` and nothing else.

    DRF's BooleanField also takes 0, 1, "0", "yes", "on", "True"...: a
    `"force": 0` would quietly mean false, and the schema says boolean.
    """

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        self.fail("invalid", input=data)
