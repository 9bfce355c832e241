from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from hub.api.v1.scoping import principal_for


class IsApiClient(BasePermission):
    """Any authenticated client may read (scoped); only admins write canonical master data."""

    message = "partner clients have read-only access to this resource"

    def has_permission(self, request, view) -> bool:
        principal = principal_for(request)
        if principal is None:
            return False
        if request.method in SAFE_METHODS or principal.is_admin:
            return True
        return getattr(view, "partner_may_write", False)
