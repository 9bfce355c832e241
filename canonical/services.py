"""Writes to the canonical model. Every write goes through here (views, admin, tasks and connectors'
apply steps are interfaces that call these). Each service opens its own transaction, validates with
the model's rules, and turns a database constraint violation into a domain error naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from canonical.errors import ConflictError, ValidationFailed
from canonical.models import (
    ExternalRef,
    Invoice,
    InvoiceLine,
    Order,
    OrderLine,
    Shipment,
    ShipmentException,
    ShipmentLine,
    Stop,
    TimestampedModel,
)


def _check_constraint_fields(model: type[models.Model]) -> dict[str, str]:
    """Each check constraint's violation message, mapped to the field it is about.

    Django reports a check constraint violation as a model-wide error; the field is the first of the
    constraint's fields that its message names ("quantity must be greater than zero" -> quantity).
    """
    fields = {}
    for constraint in model._meta.constraints:
        if not isinstance(constraint, models.CheckConstraint):
            continue
        message = str(constraint.get_violation_error_message())
        named = [
            (match.start(), name)
            for name in constraint.condition.referenced_base_fields
            if (match := re.search(rf"\b{re.escape(name)}\b", message))
        ]
        if named:
            fields[message] = min(named)[1]
    return fields


def _field_errors(exc: ValidationError, model: type[models.Model]) -> list[dict[str, str]]:
    if hasattr(exc, "error_dict"):
        errors = [
            {"field": field, "message": message}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    else:
        errors = [{"field": "non_field_errors", "message": message} for message in exc.messages]
    constraint_fields = _check_constraint_fields(model)
    for error in errors:
        if error["field"] in ("__all__", "non_field_errors") and error["message"] in constraint_fields:
            error["field"] = constraint_fields[error["message"]]
    return errors


def _validated_save[M: models.Model](instance: M, *, prefix: str = "", exclude: Iterable[str] = ()) -> M:
    """full_clean (field rules, unique and check constraints) then save; errors name the field."""
    try:
        instance.full_clean(exclude=list(exclude))
    except ValidationError as exc:
        errors = _field_errors(exc, type(instance))
        for error in errors:
            # Model-wide rules ("__all__") belong to the record itself: name the record's path.
            field = "" if error["field"] in ("__all__", "non_field_errors") else error["field"]
            error["field"] = f"{prefix}{field}".rstrip(".") or "non_field_errors"
        raise ValidationFailed(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
        ) from None
    try:
        # A savepoint, so a race lost to another writer leaves the outer transaction usable.
        with transaction.atomic():
            instance.save()
    except IntegrityError as exc:
        # Lost a race against a concurrent writer after full_clean passed: the unique key is taken now.
        raise ConflictError(f"{type(instance).__name__} conflicts with an existing record: {exc}") from None
    return instance


def _assign[M: models.Model](instance: M, data: Mapping[str, Any]) -> M:
    for name, value in data.items():
        setattr(instance, name, value)
    return instance


def external_refs_attach(*, record: TimestampedModel, refs: Iterable[Mapping[str, str]]) -> None:
    """Link ``record`` to its ids in other systems. Idempotent for refs it already has.

    Raises ``ConflictError`` if a (system, entity, external_id) already points at another record.
    """
    content_type = ContentType.objects.get_for_model(record)
    entity = type(record).__name__.lower()
    for ref in refs:
        existing = ExternalRef.objects.filter(
            system=ref["system"], entity=entity, external_id=ref["external_id"]
        ).first()
        if existing is not None:
            if existing.content_type_id == content_type.id and existing.object_id == record.pk:
                continue
            raise ConflictError(
                f"external id {ref['system']}:{ref['external_id']} already belongs to another {entity}",
                errors=[{"field": "external_refs", "message": "already linked to another record"}],
            )
        try:
            with transaction.atomic():
                ExternalRef.objects.create(
                    system=ref["system"],
                    entity=entity,
                    external_id=ref["external_id"],
                    content_type=content_type,
                    object_id=record.pk,
                )
        except IntegrityError:
            raise ConflictError(
                f"external id {ref['system']}:{ref['external_id']} was just linked to another {entity}",
                errors=[{"field": "external_refs", "message": "already linked to another record"}],
            ) from None


def record_create[M: models.Model](
    *, model: type[M], data: Mapping[str, Any], external_refs: Iterable[Mapping[str, str]] = ()
) -> M:
    """Create a flat master-data record (customer, location, carrier, product, price, rate)."""
    with transaction.atomic():
        instance = _validated_save(model(**data))
        external_refs_attach(record=instance, refs=external_refs)  # type: ignore[arg-type]
    return instance


def record_update[M: models.Model](
    *, instance: M, data: Mapping[str, Any], external_refs: Iterable[Mapping[str, str]] = ()
) -> M:
    """Update a flat master-data record with the given fields only."""
    with transaction.atomic():
        _validated_save(_assign(instance, data))
        external_refs_attach(record=instance, refs=external_refs)  # type: ignore[arg-type]
    return instance


def _replace_children[M: models.Model](
    *,
    parent_field: str,
    parent: models.Model,
    model: type[M],
    rows: list[Mapping[str, Any]],
    key: str,
    prefix: str,
) -> None:
    """Upsert child rows by their key within the parent; rows not given are deleted."""
    existing = {getattr(row, key): row for row in model.objects.filter(**{parent_field: parent})}
    keep = set()
    for index, row in enumerate(rows):
        child = existing.get(row[key]) or model(**{parent_field: parent})
        _validated_save(_assign(child, row), prefix=f"{prefix}[{index}].")
        keep.add(row[key])
    for value, child in existing.items():
        if value not in keep:
            child.delete()


def order_save(
    *,
    instance: Order | None = None,
    data: Mapping[str, Any],
    lines: list[Mapping[str, Any]] | None = None,
    external_refs: Iterable[Mapping[str, str]] = (),
) -> Order:
    """Create or update an order; ``lines`` (when given) replace its lines, matched by line_number."""
    with transaction.atomic():
        order = _validated_save(_assign(instance or Order(), data))
        if lines is not None:
            _replace_children(
                parent_field="order",
                parent=order,
                model=OrderLine,
                rows=lines,
                key="line_number",
                prefix="lines",
            )
        external_refs_attach(record=order, refs=external_refs)
    return order


MILESTONE_OWNED = ("status", "sequence", "delivered_at", "pod_received_at")


def shipment_save(
    *,
    instance: Shipment | None = None,
    data: Mapping[str, Any],
    stops: list[Mapping[str, Any]] | None = None,
    lines: list[Mapping[str, Any]] | None = None,
    external_refs: Iterable[Mapping[str, str]] = (),
) -> Shipment:
    """Create or update a shipment's planning data; ``stops`` match by sequence, ``lines`` by order line.

    Status, POD and the timeline are not set here: they move only through milestones
    (the shipment state machine), so an edit can never regress a shipment.
    """
    with transaction.atomic():
        if instance is not None and instance.pk is not None:
            # The state milestones own (status, sequence, delivery and POD times) is re-read under the
            # row lock: a caller holding an older copy must not write it back over newer events.
            current = (
                Shipment.objects.select_for_update().filter(pk=instance.pk).values(*MILESTONE_OWNED).first()
            )
            if current is not None:
                for name, value in current.items():
                    setattr(instance, name, value)
        shipment = _validated_save(_assign(instance or Shipment(), data))
        if stops is not None:
            _replace_children(
                parent_field="shipment",
                parent=shipment,
                model=Stop,
                rows=stops,
                key="sequence",
                prefix="stops",
            )
        if lines is not None:
            _replace_children(
                parent_field="shipment",
                parent=shipment,
                model=ShipmentLine,
                rows=lines,
                key="order_line",
                prefix="lines",
            )
        if instance is not None:
            Shipment.objects.filter(pk=shipment.pk).update(sequence=models.F("sequence") + 1)
            shipment.refresh_from_db(fields=["sequence"])
        external_refs_attach(record=shipment, refs=external_refs)
    return shipment


def invoice_save(
    *,
    instance: Invoice | None = None,
    data: Mapping[str, Any],
    lines: list[Mapping[str, Any]] | None = None,
    external_refs: Iterable[Mapping[str, str]] = (),
) -> Invoice:
    """Create or update an invoice; a posted or paid invoice's lines cannot change (issue a note)."""
    with transaction.atomic():
        if (
            instance is not None
            and lines is not None
            and instance.status in (Invoice.Status.POSTED, Invoice.Status.PAID)
        ):
            raise ConflictError(
                f"invoice {instance.reference} is {instance.status}: its lines cannot change; "
                "issue a credit or debit note instead",
                errors=[{"field": "lines", "message": "invoice already posted"}],
            )
        invoice = _validated_save(_assign(instance or Invoice(), data))
        if lines is not None:
            _replace_children(
                parent_field="invoice",
                parent=invoice,
                model=InvoiceLine,
                rows=lines,
                key="line_number",
                prefix="lines",
            )
        external_refs_attach(record=invoice, refs=external_refs)
    return invoice


def _refuse_second_open(record: ShipmentException) -> None:
    """One open exception per shipment and kind (a database rule): a second one is a conflict."""
    if record.status != ShipmentException.Status.OPEN or record.shipment_id is None:
        return
    others = ShipmentException.objects.filter(
        shipment_id=record.shipment_id, kind=record.kind, status=ShipmentException.Status.OPEN
    ).exclude(pk=record.pk)
    if others.exists():
        message = "this shipment already has an open exception of this kind"
        raise ConflictError(
            f"shipment {record.shipment.reference} already has an open exception of kind {record.kind}",
            # A rule over the record (shipment + kind + status), so not one field's error.
            errors=[{"field": "non_field_errors", "message": message}],
        )


def shipment_exception_open(
    *, data: Mapping[str, Any], external_refs: Iterable[Mapping[str, str]] = ()
) -> ShipmentException:
    """Open an exception on a shipment. A second open one of the same kind is a conflict."""
    data = {"opened_at": timezone.now(), **data, "status": ShipmentException.Status.OPEN, "resolved_at": None}
    with transaction.atomic():
        record = ShipmentException(**data)
        _refuse_second_open(record)
        record = _validated_save(record)
        external_refs_attach(record=record, refs=external_refs)
    return record


def shipment_exception_update(
    *, instance: ShipmentException, data: Mapping[str, Any], external_refs: Iterable[Mapping[str, str]] = ()
) -> ShipmentException:
    """Edit an exception; setting status RESOLVED stamps resolved_at (now, unless given)."""
    data = dict(data)
    with transaction.atomic():
        if data.get("status") == ShipmentException.Status.RESOLVED and instance.status != data["status"]:
            data.setdefault("resolved_at", timezone.now())
        elif data.get("status") == ShipmentException.Status.OPEN:
            data["resolved_at"] = None
        _refuse_second_open(_assign(instance, data))
        record = _validated_save(instance)
        external_refs_attach(record=record, refs=external_refs)
    return record
