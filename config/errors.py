"""JSON error pages: API clients and chat webhooks never get an HTML page."""

from django.http import JsonResponse


def not_found(request, exception=None):
    return JsonResponse({"error": "not found", "path": request.path}, status=404)


def server_error(request):
    return JsonResponse({"error": "internal server error"}, status=500)
