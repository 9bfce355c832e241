"""Recording dead letters. One letter per failed message item or delivery: a replay that fails again
updates the same letter (same stage/reason fields, replay counters kept) instead of adding one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from hub.connections.models import Connection
from hub.deadletters.models import DeadLetter

if TYPE_CHECKING:  # the layers above: dead letters are recorded by them, never import them
    from hub.inbox.models import InboundMessage
    from hub.outbox.models import Delivery

REASON_MAX_CHARS = 4000  # characters of reason kept; a stack of validation errors can be long


def _storable(text: str) -> str:
    return text.replace("\x00", "\\x00")


def dead_letter_record(
    *,
    stage: str,
    reason: str,
    error_class: str,
    connection: Connection,
    payload: bytes,
    payload_content_type: str = "",
    message: InboundMessage | None = None,
    item_index: int | None = None,
    delivery: Delivery | None = None,
    waiting_for_shipment: str = "",
    correlation_id: str = "",
) -> DeadLetter:
    """Open (or re-open) the dead letter for this message item or delivery. Idempotent per origin."""
    lookup = (
        {"delivery": delivery} if delivery is not None else {"message": message, "item_index": item_index}
    )
    fields = {
        "stage": stage,
        # A reason may quote the input it refuses; PostgreSQL text holds no NUL, and recording why a
        # message failed must never fail itself.
        "reason": _storable(reason)[:REASON_MAX_CHARS],
        "error_class": _storable(error_class),
        "connection": connection,
        "payload": payload,
        "payload_content_type": payload_content_type,
        "waiting_for_shipment": _storable(waiting_for_shipment),
        "status": DeadLetter.Status.OPEN,
        "correlation_id": correlation_id,
    }
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().filter(**lookup).first()
        if letter is None:
            try:
                with transaction.atomic():
                    return DeadLetter.objects.create(**lookup, **fields)
            except IntegrityError:  # a concurrent writer created it: update theirs
                letter = DeadLetter.objects.select_for_update().get(**lookup)
        for name, value in fields.items():
            setattr(letter, name, value)
        letter.save()
    return letter


def dead_letter_settle(*, message: InboundMessage, item_index: int | None) -> None:
    """A replayed item now succeeded: mark its open letter replayed (if there is one)."""
    DeadLetter.objects.filter(message=message, item_index=item_index, status=DeadLetter.Status.OPEN).update(
        status=DeadLetter.Status.REPLAYED, waiting_for_shipment=""
    )
