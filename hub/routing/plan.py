"""Pure routing: which subscriptions get an event. No ORM, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class SubscriptionView:
    id: UUID
    connection_id: UUID
    event_types: frozenset[str]  # empty = every type


def delivery_plan(event_type: str, subscriptions: Iterable[SubscriptionView]) -> list[SubscriptionView]:
    """The subscriptions that want ``event_type``, in a stable order."""
    return sorted(
        (s for s in subscriptions if not s.event_types or event_type in s.event_types),
        key=lambda s: str(s.id),
    )
