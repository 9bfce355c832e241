"""Liveness and readiness: `/health/` answers 200 when the database and broker answer, else 503."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from hub.core import health as health_checks


@require_GET
def health(request):
    results = health_checks.run_all()
    failing = {name: detail for name, (ok, detail) in results.items() if not ok}
    body = {name: ("ok" if ok else detail) for name, (ok, detail) in results.items()}
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
