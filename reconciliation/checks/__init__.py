"""The registered reconciliation checks (one module each) and the registry's functions."""

from reconciliation.checks.base import (
    Check,
    CheckContext,
    Finding,
    NotRepairable,
    RepairFailed,
    all_checks,
    get,
    register,
)

__all__ = [
    "Check",
    "CheckContext",
    "Finding",
    "NotRepairable",
    "RepairFailed",
    "all_checks",
    "get",
    "register",
]

import reconciliation.checks.order_shipped  # registers it
import reconciliation.checks.shipment_status  # noqa: F401  registers it
