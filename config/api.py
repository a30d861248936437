"""API-wide conventions: every error is JSON of the shape {"error": "...", ...}."""

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
