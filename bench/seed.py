"""Django-side set-up shared by the benchmark (bench/pipeline.py) and the chaos soak (bench/chaos.py).

Both run it in a subprocess with their run's environment (``_seed``): a fresh, migrated database
gets an admin API client, a carrier, a ``canonical`` inbound connection, one signed ``webhook``
connection per receiver with a subscription to every event, and the shipments the stream names.
"""

from __future__ import annotations

import os
import sys

from bench.load import shipment_ref
from bench.stack import ROOT


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()


def seed_hub(
    *,
    admin: str,
    scac: str,
    carrier_name: str,
    inbound_slug: str,
    receivers: list[tuple[str, dict, str]],
    shipments: int,
) -> str:
    """Seed the run's database (Django set up); returns the admin API key.

    ``receivers``: (connection slug, webhook config, signing secret) of each subscriber;
    ``shipments``: shipments ``shipment_ref(0)`` .. ``shipment_ref(shipments - 1)``, 5,000 a query.
    """
    from canonical.models import Carrier, Shipment
    from hub.connections.models import Subscription
    from hub.connections.services import api_client_create, connection_save
    from hub.core.services import periodic_tasks_sync

    periodic_tasks_sync()
    key = api_client_create(name=admin, admin=True).key
    carrier = Carrier.objects.create(scac=scac, name=carrier_name)
    connection_save(
        data={
            "slug": inbound_slug,
            "system": "carrier",
            "connector": "canonical",
            "config": {},
            "carrier": carrier,
        }
    )
    for slug, config, secret in receivers:
        sink = connection_save(
            data={"slug": slug, "system": "partner", "connector": "webhook", "config": config},
            secret=secret,
        )
        Subscription.objects.create(connection=sink, event_types=[])
    for first in range(0, shipments, 5000):
        Shipment.objects.bulk_create(
            [
                Shipment(reference=shipment_ref(i), carrier=carrier, mode="TL")
                for i in range(first, min(shipments, first + 5000))
            ]
        )
    return key
