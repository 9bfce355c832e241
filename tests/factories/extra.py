"""More canonical factories: the nested children the API renders, and external references."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.contenttypes.models import ContentType

from canonical import models
from tests.factories.canonical import (
    InvoiceFactory,
    OrderLineFactory,
    ProductFactory,
    ShipmentFactory,
)


class ShipmentLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ShipmentLine

    shipment = factory.SubFactory(ShipmentFactory)
    order_line = factory.SubFactory(OrderLineFactory)
    quantity = Decimal("1")


class ShipmentEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ShipmentEvent

    shipment = factory.SubFactory(ShipmentFactory)
    event_type = models.EventType.IN_TRANSIT
    occurred_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    dedupe_key = factory.Sequence(lambda n: f"evt-{n}")


class FreightChargeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.FreightCharge

    shipment = factory.SubFactory(ShipmentFactory)
    kind = models.FreightCharge.Kind.LINEHAUL
    amount = Decimal("100.00")
    currency = "USD"
    source_system = "tms"


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory)
    line_number = factory.Sequence(lambda n: n + 1)
    description = factory.Faker("sentence", nb_words=3)
    product = factory.SubFactory(ProductFactory)
    quantity = Decimal("2")
    unit_price = Decimal("12.50")


def external_ref_add(record: models.TimestampedModel, *, system: str, external_id: str) -> models.ExternalRef:
    """Link ``record`` to its id in ``system`` (the entity is the model name, as the services use)."""
    return models.ExternalRef.objects.create(
        system=system,
        entity=type(record).__name__.lower(),
        external_id=external_id,
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
    )
