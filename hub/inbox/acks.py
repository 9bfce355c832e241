"""Acknowledging received messages to their sender (X12: a TA1 per interchange when the partner
asked for one or the connection says so, then one 997 per functional group).

After a message is first processed, the connector's ``interchange_acknowledge_operation`` (if it has
one) is performed once per ``interchange_acknowledgements`` item its reader produced, then its
``acknowledge_operation`` once per ``acknowledgements`` item, through the side-effect ledger keyed by
the message and the interchange (``:TA1:<ISA13>``) or group (``:<GS01>:<GS06>``), with control
numbers drawn once from the connection's durable counters and kept in the ledger row: a retry after
a crash resends the identical interchange, never a second one with new numbers. A faulty envelope
the reader tolerated (IEA02 not ISA13, counts off) is acknowledged like any other, its fault noted
in the TA1 (TA104 E + TA105) or the 997 (AK9 E + code). A connection without an outbound address
is not acknowledged (the trace says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from connectors import registry
from connectors.base import InboundRequest
from connectors.errors import ConnectorError
from hub.connections.services import connection_config
from hub.core import work
from hub.inbox.models import InboundMessage
from hub.ledger.services import control_number_next, side_effect_payload_once, side_effect_perform

logger = logging.getLogger(__name__)

ACKNOWLEDGE_TASK = "hub.inbox.acknowledge"


def acknowledge_on_commit(message: InboundMessage) -> None:
    """Once a message's first processing commits, send its acknowledgements (a task, by id)."""
    if registry.get(message.connection.connector).connector.acknowledge_operation is None:
        return
    work.task_on_commit(ACKNOWLEDGE_TASK, message.pk)


def message_acknowledge(*, message_id: UUID) -> int:
    """Send the acknowledgements of one received message. Idempotent; returns how many were sent."""
    message = InboundMessage.objects.select_related("connection").filter(pk=message_id).first()
    if message is None:
        return 0
    connection = message.connection
    spec = registry.get(connection.connector)
    operation = spec.connector.acknowledge_operation
    if operation is None:
        return 0
    config = connection_config(connection)
    if getattr(config, "outbound_url", "unset") is None:
        return 0  # nowhere to send it: the partner gets no acknowledgement (documented per connector)
    request = InboundRequest(
        body=bytes(message.body), content_type=message.content_type, headers=message.headers
    )
    try:
        parsed = spec.instance().parse(request, config)
    except ConnectorError:
        return 0  # an unreadable interchange: nothing to acknowledge group by group
    writes: list[tuple[str, str, Callable[[], dict]]] = []
    interchange_operation = spec.connector.interchange_acknowledge_operation
    for interchange in parsed.interchange_acknowledgements if interchange_operation else []:

        def build_ta1(interchange=interchange) -> dict:
            number = control_number_next(connection=connection, name="interchange")
            return {"interchange": interchange, "control": {"interchange": number}}

        key = f"{message.idempotency_key}:TA1:{interchange.get('control_number', '')}"
        writes.append((interchange_operation, key, build_ta1))
    for group in parsed.acknowledgements:

        def build(group=group) -> dict:
            return {
                "group": group,
                "control": {
                    "interchange": control_number_next(connection=connection, name="interchange"),
                    "group": control_number_next(connection=connection, name="group"),
                    "transaction_set": 1,
                },
            }

        key = f"{message.idempotency_key}:{group.get('functional_id', '')}:{group.get('control_number', '')}"
        writes.append((operation, key, build))
    sent = 0
    for write_operation, key, build_payload in writes:
        payload = side_effect_payload_once(
            connection=connection, operation=write_operation, business_key=key, build=build_payload
        )
        try:
            side_effect_perform(
                connection=connection, operation=write_operation, business_key=key, payload=payload
            )
        except ConnectorError as exc:
            logger.warning("acknowledging %s (%s) failed: %s", message.pk, key, exc.detail)
            continue  # recorded on the ledger row; the ledger sweep retries transient failures
        sent += 1
    return sent
