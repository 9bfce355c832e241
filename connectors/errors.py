"""The connector error taxonomy. The hub decides retry or dead letter from the class alone.

- ``TransientError``: try again later (network, timeout, 408/429/5xx); ``retry_after`` in seconds if
  the peer said so.
- ``PermanentError``: retrying cannot help (4xx, a rejected document): dead-letter at once.
- ``AuthError``: credentials refused; a permanent error an operator must fix.
- ``ParseError``: the bytes are not a readable document (stage ``parse``).
- ``MappingError``: a field or code has no canonical mapping (stage ``map``); names the field and value.
- ``NotSupported``: the connector does not have this capability.
"""

from __future__ import annotations


class ConnectorError(Exception):
    stage = "apply"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class NotSupported(ConnectorError):
    pass


class TransientError(ConnectorError):
    stage = "deliver"

    def __init__(self, detail: str, *, retry_after: float | None = None, status_code: int | None = None):
        super().__init__(detail)
        self.retry_after = retry_after
        self.status_code = status_code


class PermanentError(ConnectorError):
    stage = "deliver"

    def __init__(self, detail: str, *, status_code: int | None = None):
        super().__init__(detail)
        self.status_code = status_code


class AuthError(PermanentError):
    pass


class ParseError(ConnectorError):
    stage = "parse"

    def __init__(self, detail: str, *, position: str | None = None):
        super().__init__(f"{detail} (at {position})" if position else detail)
        self.position = position


class MappingError(ConnectorError):
    stage = "map"

    def __init__(self, detail: str, *, field: str, value: object = None):
        super().__init__(detail)
        self.field = field
        self.value = value
