"""Liveness and readiness: `/health/` answers 200 when the database and broker answer, else 503.

The 503 names the failing parts; their error text only for an admin (see hub.ops.health)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from hub.ops import health as health_checks


@require_GET
def health(request):
    results = health_checks.run_all_logged()
    failing = {name: detail for name, (ok, detail) in results.items() if not ok}
    body = health_checks.shown(results, details=bool(failing) and health_checks.caller_sees_details(request))
    if failing:
        names = ", ".join(sorted(failing))
        problem = {
            "type": "https://crossdock.dev/problems/unhealthy",
            "title": "Service unavailable",
            "status": 503,
            "detail": f"failing: {names}",
            "checks": body,
        }
        return JsonResponse(problem, status=503, content_type="application/problem+json")
    return JsonResponse({"status": "ok", "checks": body})
