"""Who may call which API method; the rules themselves are in ``hub.api.v1.scoping``."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from hub.api.v1.scoping import principal_for, staff_may, staff_permission


class IsApiClient(BasePermission):
    """Admins do everything; partner API clients read (scoped); a staff login needs the Django model
    permission for the method on the viewset's model, and a superuser where the view has no model."""

    message = "partner clients have read-only access to this resource"

    def has_permission(self, request, view) -> bool:
        principal = principal_for(request)
        if principal is None:
            return False
        if principal.is_admin:
            return True
        if principal.user is not None:
            model = getattr(getattr(view, "queryset", None), "model", None)
            if model is None:
                raise exceptions.PermissionDenied("only a superuser login may use this resource")
            if not staff_may(principal.user, request.method, model):
                needed = staff_permission(request.method, model) or request.method
                raise exceptions.PermissionDenied(f"your login lacks the permission {needed!r}")
            return True
        if request.method in SAFE_METHODS:
            return True
        return getattr(view, "partner_may_write", False)
