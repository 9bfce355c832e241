"""Correlation ids: taken from ``X-Correlation-ID`` or generated, carried on logs and responses."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HEADER = "X-Correlation-ID"
_META_KEY = "HTTP_X_CORRELATION_ID"
# Accept callers' ids only when they are short and printable, so they are safe in logs and headers.
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_current: ContextVar[str | None] = ContextVar("crossdock_correlation_id", default=None)


def correlation_id_get() -> str | None:
    return _current.get()


def correlation_id_set(value: str | None):
    return _current.set(value)


@contextmanager
def correlation_scope(value: str | None) -> Iterator[None]:
    """Run a block (a task, one message) under a correlation id; restores the previous one after."""
    token = _current.set(value)
    try:
        yield
    finally:
        _current.reset(token)


def correlation_id_new() -> str:
    return uuid.uuid4().hex


class CorrelationIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(_META_KEY, "")
        cid = incoming if _VALID.match(incoming) else correlation_id_new()
        request.correlation_id = cid
        token = _current.set(cid)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = cid
        return response


class CorrelationIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = _current.get() or "-"
        return True
