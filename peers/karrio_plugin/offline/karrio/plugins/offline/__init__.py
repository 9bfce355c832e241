"""Crossdock's offline carrier for the Karrio peer (loaded through KARRIO_PLUGINS by peers/karrio.sh).

Rates and labels come from Karrio's own universal code (computed locally, no network). Tracking is
what the stock ``generic`` carrier lacks: with ``get_tracking`` Karrio creates a tracker for every
purchased shipment, and ``POST /v1/trackers/{id}/inject-events`` then drives real webhooks.
"""

import karrio.core.metadata as metadata
import karrio.mappers.offline as mappers

METADATA = metadata.PluginMetadata(
    status="beta",
    id="offline",
    label="Offline carrier (Crossdock tests)",
    Mapper=mappers.Mapper,
    Proxy=mappers.Proxy,
    Settings=mappers.Settings,
    services=mappers.Service,
    service_levels=mappers.SERVICES,
    has_intl_accounts=True,
)
