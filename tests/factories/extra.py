"""More canonical factories: prices, rates, the nested children the API and admin render, and
external references."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.contenttypes.models import ContentType

from canonical import models
from tests.factories.canonical import (
    CarrierFactory,
    InvoiceFactory,
    LocationFactory,
    OrderLineFactory,
    ProductFactory,
    ShipmentFactory,
)


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Price

    product = factory.SubFactory(ProductFactory)
    unit_price = Decimal("9.90")
    currency = "USD"
    valid_from = dt.date(2025, 1, 1)


class RateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Rate

    carrier = factory.SubFactory(CarrierFactory)
    origin = factory.SubFactory(LocationFactory)
    destination = factory.SubFactory(LocationFactory)
    amount = Decimal("450.00")
    currency = "USD"
    valid_from = dt.date(2025, 1, 1)


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
    source_system = "karrio"
    source_event_id = factory.Sequence(lambda n: f"trk-evt-{n}")
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
