"""The registered reconciliation checks (one module each) and the registry's functions."""

from reconciliation.checks import (
    delivered_invoiced,  # noqa: F401  registers it
    freight_audit,  # noqa: F401  registers it
    invoice_amounts,  # noqa: F401  registers it
)
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
