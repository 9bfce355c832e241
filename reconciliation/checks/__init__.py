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

# Each check module registers its check on import (after the registry above exists).
from reconciliation.checks import (
    cases_match,  # noqa: F401
    delivered_invoiced,  # noqa: F401
    freight_accrual,  # noqa: F401
    freight_audit,  # noqa: F401
    invoice_amounts,  # noqa: F401
    master_data,  # noqa: F401
    order_shipped,  # noqa: F401
    shipment_status,  # noqa: F401
)
