"""Versioned canonical contracts (pydantic, no ORM): what connectors produce and the hub applies."""

from canonical.contracts.v1 import EventType, LocationRef, MilestoneEvent, ShipmentRef, semantic_key

__all__ = ["EventType", "LocationRef", "MilestoneEvent", "ShipmentRef", "semantic_key"]
