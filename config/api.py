"""API-wide conventions: every error is JSON of the shape {"error": "...", ...}."""

import hmac

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
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
