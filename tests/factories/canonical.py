from __future__ import annotations

from decimal import Decimal

import factory

from canonical import models


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Customer

    code = factory.Sequence(lambda n: f"CUST{n:04d}")
    name = factory.Faker("company")


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Location

    code = factory.Sequence(lambda n: f"LOC{n:04d}")
    name = factory.Faker("city")
    country = "US"


class CarrierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Carrier

    # "C" + three letters, base 26: 17,576 distinct codes within a SCAC's four characters (a decimal
    # spelling ran past four characters once a session had made a thousand carriers).
    scac = factory.Sequence(lambda n: "C" + "".join(chr(65 + (n // 26**i) % 26) for i in (2, 1, 0)))
    name = factory.Faker("company")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Faker("word")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Order

    reference = factory.Sequence(lambda n: f"SO-{n:05d}")
    customer = factory.SubFactory(CustomerFactory)


class OrderLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.OrderLine

    order = factory.SubFactory(OrderFactory)
    line_number = factory.Sequence(lambda n: n + 1)
    product = factory.SubFactory(ProductFactory)
    quantity = Decimal("1")
    unit_price = Decimal("10.00")


class ShipmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Shipment

    reference = factory.Sequence(lambda n: f"SHP-{n:05d}")
    carrier = factory.SubFactory(CarrierFactory)
    customer = factory.SubFactory(CustomerFactory)


class StopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Stop

    shipment = factory.SubFactory(ShipmentFactory)
    sequence = factory.Sequence(lambda n: n + 1)
    kind = models.Stop.Kind.PICKUP
    location = factory.SubFactory(LocationFactory)


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Invoice

    reference = factory.Sequence(lambda n: f"INV-{n:05d}")
    customer = factory.SubFactory(CustomerFactory)


class ShipmentExceptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ShipmentException

    shipment = factory.SubFactory(ShipmentFactory)
    kind = models.ShipmentException.Kind.DELAYED
    opened_at = factory.Faker("date_time", tzinfo=__import__("datetime").UTC)
