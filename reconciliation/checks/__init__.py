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
from reconciliation.checks import (
    cases_match,  # noqa: F401  registers it
    freight_accrual,  # noqa: F401  registers it
    master_data,  # noqa: F401  registers it
)
