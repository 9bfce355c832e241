"""RFC 9457 problem details for every API error: one exception handler plus the 404/500 views.

A problem has ``type`` (a URN naming the kind), ``title``, ``status``, ``detail`` and, for validation
failures, ``errors``: a list of ``{"field", "message"}`` whose field is a dotted path into the body
(``lines[0].product``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from hub.core.errors import DomainError

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"

_SLUGS = {
    exceptions.ValidationError: ("validation-error", "Validation failed"),
    exceptions.ParseError: ("malformed-request", "Malformed request body"),
    exceptions.NotAuthenticated: ("not-authenticated", "Authentication required"),
    exceptions.AuthenticationFailed: ("authentication-failed", "Authentication failed"),
    exceptions.PermissionDenied: ("permission-denied", "Permission denied"),
    exceptions.NotFound: ("not-found", "Not found"),
    exceptions.MethodNotAllowed: ("method-not-allowed", "Method not allowed"),
    exceptions.NotAcceptable: ("not-acceptable", "Not acceptable"),
    exceptions.UnsupportedMediaType: ("unsupported-media-type", "Unsupported media type"),
    exceptions.Throttled: ("rate-limited", "Too many requests"),
}


def problem(status_code: int, slug: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    body = {"type": f"urn:crossdock:problem:{slug}", "title": title, "status": status_code, "detail": detail}
    body.update(extra)
    return body


def flatten_errors(data: Any, prefix: str = "") -> Iterator[dict[str, str]]:
    """DRF's nested error structure as a flat list of ``{"field", "message"}``."""
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, int):  # a list serializer's errors, keyed by item index
                yield from flatten_errors(value, f"{prefix}[{key}]")
            elif key in ("non_field_errors", "__all__"):
                yield from flatten_errors(value, prefix)
            else:
                yield from flatten_errors(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            for item in data:
                yield {"field": prefix or "non_field_errors", "message": str(item)}
        else:
            for index, item in enumerate(data):
                if item:
                    yield from flatten_errors(item, f"{prefix}[{index}]")
    else:
        yield {"field": prefix or "non_field_errors", "message": str(data)}


def _response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(body, status=body["status"], headers=headers, content_type=CONTENT_TYPE)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, DomainError):
        extra = {"errors": exc.errors} if exc.errors else {}
        return _response(problem(exc.status, exc.slug, exc.title, exc.detail, **extra))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API exception: a bug or an outage. Log it in full; answer a problem, never HTML.
        logger.exception("unhandled error in %s", context.get("view").__class__.__name__)
        return _response(
            problem(
                500,
                "internal-error",
                "Internal server error",
                "an unexpected error occurred; it has been logged",
            )
        )

    slug, title = next(
        ((s, t) for cls, (s, t) in _SLUGS.items() if isinstance(exc, cls)), ("error", "Request failed")
    )
    headers = {k: v for k, v in response.headers.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
    if isinstance(exc, exceptions.ValidationError):
        errors = list(flatten_errors(response.data))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _response(problem(response.status_code, slug, title, detail, errors=errors), headers)
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else str(response.data)
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after"] = int(exc.wait + 0.999)
    return _response(problem(response.status_code, slug, title, str(detail), **extra), headers)


def _wants_problem(request) -> bool:
    return request.path.startswith(("/api/", "/health"))


def not_found_view(request, exception=None):
    if _wants_problem(request):
        body = problem(404, "not-found", "Not found", f"no resource at {request.path}")
        return JsonResponse(body, status=404, content_type=CONTENT_TYPE)
    return defaults.page_not_found(request, exception)


def server_error_view(request):
    if _wants_problem(request):
        body = problem(
            500, "internal-error", "Internal server error", "an unexpected error occurred; it has been logged"
        )
        return JsonResponse(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR, content_type=CONTENT_TYPE)
    return defaults.server_error(request)
