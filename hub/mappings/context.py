"""What a connector's I/O capabilities get from the hub for one connection (OperationContext): its
config, secret, safe HTTP client and published mapping set, so it lives with the mappings."""

from __future__ import annotations

from connectors.base import OperationContext
from hub.connections.models import Connection
from hub.connections.services import connection_config, connection_secret
from hub.core.correlation import correlation_id_get
from hub.core.http import DEFAULT_READ_TIMEOUT_S, SafeHttpClient
from hub.mappings.services import mapping_set_for


def connection_context(connection: Connection, *, direction: str) -> OperationContext:
    """Config, decrypted secret, the safe HTTP client (the connector's ``timeout_s`` when it has one)
    and the published mapping set for ``direction`` (inbound or outbound)."""
    config = connection_config(connection)
    return OperationContext(
        config=config,
        secret=connection_secret(connection),
        client=SafeHttpClient(
            read_timeout_s=float(getattr(config, "timeout_s", None) or DEFAULT_READ_TIMEOUT_S),
            correlation_id=correlation_id_get(),
        ),
        mappings=mapping_set_for(connection=connection, direction=direction),
        connection_slug=connection.slug,
    )
