"""API permissions by staff role (inbox.roles)."""

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from inbox.roles import is_operator


class IsOperator(BasePermission):
    """Staff who work in the inbox: operators, managers, administrators, superusers."""

    message = _("Only the store's operators may do this.")

    def has_permission(self, request, view) -> bool:
        return is_operator(request.user)
