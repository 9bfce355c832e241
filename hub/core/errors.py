"""Domain errors used across the hub. They live in :mod:`canonical.errors` (the lowest layer), so
canonical services can raise them too; the API maps each to an RFC 9457 problem."""

from canonical.errors import ConflictError, DomainError, NotFoundError, ValidationFailed

__all__ = ["ConflictError", "DomainError", "NotFoundError", "ValidationFailed"]
