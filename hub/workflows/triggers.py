"""What starts the process flows, reconciled by the sweeper rather than fired once.

Every few seconds the sweeper looks for the facts that should have a run and have none: a confirmed
ERP order (order-to-ship), a shipment booked in the TMS (ship-to-invoice), an open shipment exception
(exception-to-case), a freight adjustment on an invoiced shipment. Starting is idempotent per
business key, so a fact seen twice, or a trigger missed by a crash, still gives exactly one run.
Only flows switched on in their FlowConfig start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db.models import Exists, OuterRef, QuerySet

from canonical.errors import ValidationFailed
from connectors import registry
from hub.connections.models import Connection
from hub.workflows import definitions
from hub.workflows.models import FlowConfig, WorkflowRun
from hub.workflows.services import workflow_start

logger = logging.getLogger(__name__)

SCAN_LIMIT = 100  # facts one scan starts runs for, per flow; the next sweep takes the rest

# flow key -> function(config) -> [(business_key, inputs, subject)] of facts without a run
_SOURCES: dict[str, Callable[[FlowConfig], list[tuple[str, dict, str]]]] = {}


def source(flow: str):
    """Register the fact scan of a flow (its module declares it beside its steps)."""

    def register(fn):
        _SOURCES[flow] = fn
        return fn

    return register


def without_run(queryset: QuerySet, flow: str, key_field: str) -> QuerySet:
    """The rows of ``queryset`` no run of ``flow`` has as business key (an indexed anti-join)."""
    return queryset.exclude(Exists(WorkflowRun.objects.filter(flow=flow, business_key=OuterRef(key_field))))[
        :SCAN_LIMIT
    ]


def workflow_triggers_scan() -> dict[str, int]:
    """Start a run for every fact of an enabled flow that has none. Idempotent."""
    started: dict[str, int] = {}
    for config in FlowConfig.objects.filter(enabled=True):
        scan = _SOURCES.get(config.flow)
        if scan is None:
            continue
        count = 0
        for business_key, inputs, subject in scan(config):
            # A run keeps the connections and options it started with, whatever changes later.
            inputs = {"connections": config.connections, "options": config.options, **inputs}
            _run, created = workflow_start(
                flow=config.flow, business_key=business_key, inputs=inputs, subject=subject, actor="trigger"
            )
            count += int(created)
        started[config.flow] = count
    return started


def workflow_triggers_started() -> int:
    """The sweep hook: scan the triggers, return how many runs started."""
    return sum(workflow_triggers_scan().values())


def flow_config_save(
    *, flow: str, enabled: bool, connections: dict[str, str], options: dict | None = None
) -> FlowConfig:
    """Switch a flow on or off and point it at connections. Raises ValidationFailed naming each
    problem: an unknown flow, a missing role, an unknown connection, a connector without the
    operations the flow needs."""
    try:
        definition = definitions.get(flow)
    except KeyError as exc:
        raise ValidationFailed(
            str(exc.args[0]), errors=[{"field": "flow", "message": str(exc.args[0])}]
        ) from None
    errors = []
    for role, needed in definition.requires.items():
        slug = connections.get(role)
        if not slug:
            errors.append({"field": f"connections.{role}", "message": f"the flow needs a {role} connection"})
            continue
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            errors.append({"field": f"connections.{role}", "message": f"no connection {slug!r}"})
            continue
        operations = registry.get(connection.connector).connector.operations
        missing = [op for op in needed if op not in operations]
        if missing:
            errors.append(
                {
                    "field": f"connections.{role}",
                    "message": f"connector {connection.connector!r} lacks {', '.join(missing)}",
                }
            )
    if errors and enabled:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)
    config, _ = FlowConfig.objects.update_or_create(
        flow=flow, defaults={"enabled": enabled, "connections": connections, "options": options or {}}
    )
    return config
