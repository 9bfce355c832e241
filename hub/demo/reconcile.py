"""The demo day's reconciliation block: every registered check run once against the day's peers, as
the beat would run it, and what each found, repaired and left open."""

from __future__ import annotations

from dataclasses import dataclass

from hub.demo.setup import Wiring
from reconciliation import checks, services
from reconciliation.models import CheckConfig, Discrepancy


@dataclass(frozen=True)
class CheckOutcome:
    check: str
    status: str
    found: int  # disagreeing keys this run saw (new and still open)
    repaired: int
    left_open: int  # open discrepancies of the check after the run
    error: str = ""


def demo_reconcile(*, wiring: Wiring, auto_repair: bool = False) -> list[CheckOutcome]:
    """Point every check at the day's connections and run it now, in this process. A check that fails
    (a peer that cannot answer) is reported with its error; the others still run."""
    roles = {"erp": wiring.erp.slug, "tms": wiring.tms.slug, "crm": wiring.crm.slug}
    outcomes = []
    for check in checks.all_checks():
        config = services.check_config(check.name)
        options = {
            **(config.options or {}),
            "connections": {**(config.options or {}).get("connections", {}), **roles},
        }
        CheckConfig.objects.filter(pk=config.pk).update(options=options, auto_repair=auto_repair)
        run = services.run_start(check=check.name, actor="demo:day")
        services.run_execute(run_id=run.pk)
        run.refresh_from_db()
        outcomes.append(
            CheckOutcome(
                check=check.name,
                status=run.status,
                found=run.new + run.still_open,
                repaired=run.repaired,
                left_open=Discrepancy.objects.filter(
                    check_name=check.name, status__in=Discrepancy.OPEN_STATUSES
                ).count(),
                error=run.error,
            )
        )
    return outcomes
