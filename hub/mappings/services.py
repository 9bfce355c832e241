"""Mapping versions: save a draft (validated), publish it, preview it on a stored message, and hand
the hub the published set (connector defaults overlaid with the connection's overrides)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from canonical.contracts.v1 import DOCUMENT_CONTRACTS
from canonical.errors import ConflictError, ValidationFailed
from connectors import mapping as mapping_lib
from connectors import registry
from connectors.base import InboundRequest
from connectors.errors import ConnectorError, NotSupported
from hub.connections.models import Connection
from hub.connections.services import connection_config
from hub.mappings.models import Mapping

MAPPING_CACHE_S = 5.0  # seconds a process reuses a connection's published mapping set


def _problems(connection: Connection, direction: str, data: Any) -> list[str]:
    spec = registry.get(connection.connector)
    problems = mapping_lib.validate(data, spec.mapping_targets)
    if problems:
        return problems
    merged = mapping_lib.merge(spec.default_mappings.get(direction), data)
    return mapping_lib.validate(merged, spec.mapping_targets)


def mapping_save(
    *,
    instance: Mapping | None = None,
    connection: Connection | None = None,
    direction: str | None = None,
    data: dict[str, Any],
    notes: str = "",
) -> Mapping:
    """Create a draft (next version number) or update a draft. Raises ValidationFailed listing every
    problem (unknown code set, a canonical value that does not exist...), ConflictError for a
    published or retired version (those never change: save a new draft instead)."""
    if instance is not None and instance.status != Mapping.Status.DRAFT:
        raise ConflictError(
            f"version {instance.version} is {instance.status} and cannot change; create a new draft"
        )
    connection = instance.connection if instance is not None else connection
    direction = instance.direction if instance is not None else direction
    if connection is None or direction not in Mapping.Direction.values:
        raise ValidationFailed("a mapping needs a connection and a direction (inbound or outbound)")
    problems = _problems(connection, direction, data)
    if problems:
        raise ValidationFailed(
            "; ".join(problems), errors=[{"field": "data", "message": problem} for problem in problems]
        )
    for _ in range(3):  # two drafts created at once race for the version number; the loser retries
        try:
            with transaction.atomic():
                mapping = instance or Mapping(connection=connection, direction=direction)
                if mapping.version is None:
                    latest = Mapping.objects.filter(connection=connection, direction=direction).aggregate(
                        v=Max("version")
                    )["v"]
                    mapping.version = (latest or 0) + 1
                mapping.data = data
                mapping.notes = notes
                mapping.save()
                return mapping
        except IntegrityError:
            if instance is not None:
                raise
    raise ConflictError("another draft took this version number; try again")


def mapping_publish(*, mapping: Mapping, user: str = "") -> Mapping:
    """Make ``mapping`` the version messages use; the previous published one is retired.

    Validated again (the connector's defaults may have changed since the draft was saved).
    """
    problems = _problems(mapping.connection, mapping.direction, mapping.data)
    if problems:
        raise ValidationFailed("; ".join(problems))
    with transaction.atomic():
        locked = Mapping.objects.select_for_update().get(pk=mapping.pk)
        if locked.status != Mapping.Status.DRAFT:
            raise ConflictError(f"version {locked.version} is {locked.status}; only a draft can be published")
        Mapping.objects.filter(
            connection_id=locked.connection_id, direction=locked.direction, status=Mapping.Status.PUBLISHED
        ).update(status=Mapping.Status.RETIRED)
        locked.status = Mapping.Status.PUBLISHED
        locked.published_at = timezone.now()
        locked.published_by = user
        locked.save()
    _cache.clear()
    return locked


_cache: dict[tuple[str, str], tuple[float, mapping_lib.MappingSet]] = {}


def mapping_set_for(*, connection: Connection, direction: str) -> mapping_lib.MappingSet:
    """The rules a message of this connection goes through now: the connector's packaged defaults
    overlaid with the published version (``version`` 0 when none is published). Cached briefly."""
    key = (str(connection.pk), direction)
    hit = _cache.get(key)
    now_m = time.monotonic()
    if hit is not None and hit[0] > now_m:
        return hit[1]
    spec = registry.get(connection.connector)
    published = (
        Mapping.objects.filter(connection=connection, direction=direction, status=Mapping.Status.PUBLISHED)
        .only("version", "data")
        .first()
    )
    result = mapping_lib.MappingSet.from_data(
        mapping_lib.merge(spec.default_mappings.get(direction), published.data if published else None),
        version=published.version if published else 0,
    )
    if len(_cache) > 1000:
        _cache.clear()
    _cache[key] = (now_m + MAPPING_CACHE_S, result)
    return result


def mapping_cache_clear() -> None:
    """Forget the cached mapping sets (publishing does this; tests that count queries do too)."""
    _cache.clear()


@dataclass
class Preview:
    """What a draft makes of one stored message: canonical documents, or the errors, per document."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the parser's warnings


def _contract(doc: dict[str, Any]):
    kind = doc.get("kind", "milestone") if isinstance(doc, dict) else "milestone"
    if kind not in DOCUMENT_CONTRACTS:
        raise ValueError(f"unknown canonical document kind {kind!r}")
    return DOCUMENT_CONTRACTS[kind]


def mapping_preview(
    *, mapping: Mapping, body: bytes, content_type: str, headers: dict | None = None
) -> Preview:
    """Run a stored message through ``mapping`` (a draft or any version) without applying anything.

    Parse, map and contract validation run exactly as in the pipeline; nothing is written.
    """
    connection = mapping.connection
    spec = registry.get(connection.connector)
    connector = spec.instance()
    config = connection_config(connection)
    rules = mapping_lib.MappingSet.from_data(
        mapping_lib.merge(spec.default_mappings.get(mapping.direction), mapping.data), version=mapping.version
    )
    preview = Preview()
    request = InboundRequest(body=body, content_type=content_type, headers=headers or {})
    try:
        parsed = connector.parse(request, config)
    except NotSupported:
        preview.errors.append(f"connector {spec.key!r} does not read inbound messages")
        return preview
    except ConnectorError as exc:
        preview.errors.append(f"parse: {exc.detail}")
        return preview
    preview.problems = list(parsed.problems)
    for index, document in enumerate(parsed.documents):
        where = f"document {index}" if len(parsed.documents) > 1 else "document"
        try:
            docs = connector.map(document, config, rules)
        except ConnectorError as exc:
            field_name = getattr(exc, "field", None)
            preview.errors.append(f"{where}: map: {field_name + ': ' if field_name else ''}{exc.detail}")
            continue
        for doc in docs:
            try:
                contract = _contract(doc)
            except ValueError as exc:
                preview.errors.append(f"{where}: validate: {exc}")
                continue
            try:
                model = contract.model_validate(doc)
            except PydanticValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or '(document)'}: {err['msg']}"
                    for err in exc.errors()
                )
                preview.errors.append(f"{where}: validate: {detail}")
                continue
            preview.documents.append(model.model_dump(mode="json", exclude_none=True))
    return preview
