"""Domain errors raised by services; the API maps each to an RFC 9457 problem, the admin to a message."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    slug = "invalid-request"
    title = "Invalid request"

    def __init__(self, detail: str, *, errors: list[dict[str, str]] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class ValidationFailed(DomainError):
    status = 400
    slug = "validation-error"
    title = "Validation failed"


class NotFoundError(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class ConflictError(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"
