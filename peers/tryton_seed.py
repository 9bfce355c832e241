"""Seed the Tryton peer's database (run by ``peers/tryton.sh init`` with the peer venv's Python).

In-process through proteus (no server needed). The steps follow trytond's packaged scenario
``modules/sale_shipment_cost/tests/scenario_sale_shipment_cost.rst`` and the helpers in
``modules/{company,account,account_invoice}/tests/tools.py``:

- USD with rate 1 (no currency data ships; ``trytond_import_currencies`` needs the internet);
- company "Peer Logistics Inc.", the English chart of accounts with default accounts;
- fiscal years for this year and next, each with monthly periods, a strict move sequence and invoice
  sequences (``INV<year>-`` for invoices, ``CN<year>-`` for credit notes);
- payment term "Direct"; product category "Sellable"; products WIDGET (goods, unit), CABLE (goods, meter)
  and FREIGHT (service);
- carrier "Speedy Freight" (carrier product FREIGHT, cost method ``product``), the default carrier;
- customers "ACME Corp" and "Globex Ltd" with an address, e-mail and phone;
- 1000 WIDGET and 5000 m CABLE received into storage, so shipments assign without forcing.
"""

from __future__ import annotations

import argparse
import datetime as dt
from decimal import Decimal

from proteus import Model, config

COMPANY_NAME = "Peer Logistics Inc."


def seed(database: str, config_file: str) -> None:
    config.set_trytond(database=database, config_file=config_file)

    # Imported after set_trytond: the helpers read the active proteus config.
    from trytond.modules.account.tests.tools import create_chart, create_fiscalyear, get_accounts
    from trytond.modules.account_invoice.tests.tools import create_payment_term
    from trytond.modules.company.tests.tools import create_company

    Party = Model.get("party.party")
    Company = Model.get("company.company")
    if Company.find([]):
        raise SystemExit("the database is already seeded (a company exists); init --force rebuilds it")

    company_party = Party(name=COMPANY_NAME)
    company_party.save()
    create_company(party=company_party, currency="USD")
    company = Company.find([])[0]
    create_chart(company)
    accounts = get_accounts(company)

    Country = Model.get("country.country")
    us = Country(name="United States", code="US", code3="USA")
    us.save()

    this_year = dt.date.today().year
    for year in (this_year, this_year + 1):
        fiscalyear = create_fiscalyear(company, today=(dt.date(year, 1, 1), dt.date(year, 12, 31)))
        _set_invoice_sequences(fiscalyear, year)
        fiscalyear.save()
        fiscalyear.click("create_period")

    payment_term = create_payment_term()
    payment_term.save()

    Category = Model.get("product.category")
    category = Category(name="Sellable", accounting=True)
    category.account_revenue = accounts["revenue"]
    category.account_expense = accounts["expense"]
    category.save()

    Uom = Model.get("product.uom")
    (unit,) = Uom.find([("name", "=", "Unit")])
    widget = _product("WIDGET", "Widget", "goods", Decimal("20"), Decimal("8"), unit, category)
    freight = _product("FREIGHT", "Freight", "service", Decimal("15"), Decimal("10"), unit, category)
    (meter,) = Uom.find([("name", "=", "Meter")])
    cable = _product("CABLE", "Cable", "goods", Decimal("2.50"), Decimal("1"), meter, category)

    Carrier = Model.get("carrier")
    carrier_party = Party(name="Speedy Freight")
    carrier_party.save()
    carrier = Carrier(party=carrier_party, carrier_product=freight, carrier_cost_method="product")
    carrier.save()
    Model.get("carrier.selection")(carrier=carrier).save()

    _customer("ACME Corp", "orders@acme.example", "+1 555 0100", "1 Main Street", "Springfield", "62701", us)
    _customer(
        "Globex Ltd", "buying@globex.example", "+1 555 0200", "500 Oak Avenue", "Cypress Creek", "90210", us
    )

    Location = Model.get("stock.location")
    (supplier,) = Location.find([("code", "=", "SUP")])
    (storage,) = Location.find([("code", "=", "STO")])
    Move = Model.get("stock.move")
    for product, quantity, cost in ((widget, 1000, Decimal("8")), (cable, 5000, Decimal("1"))):
        move = Move(
            product=product,
            quantity=quantity,
            unit=product.default_uom,
            from_location=supplier,
            to_location=storage,
            unit_price=cost,
            currency=company.currency,
            company=company,
        )
        move.save()
        move.click("do")
    print(
        f"seeded: {COMPANY_NAME}, fiscal years {this_year}-{this_year + 1}, WIDGET, CABLE, FREIGHT, 2 customers"
    )


def _set_invoice_sequences(fiscalyear, year: int) -> None:
    SequenceStrict = Model.get("ir.sequence.strict")
    SequenceType = Model.get("ir.sequence.type")
    (invoice_type,) = SequenceType.find([("name", "=", "Invoice")], limit=1)
    invoices = SequenceStrict(
        name=f"Invoices {year}", sequence_type=invoice_type, company=fiscalyear.company, prefix=f"INV{year}-"
    )
    invoices.save()
    credit_notes = SequenceStrict(
        name=f"Credit notes {year}",
        sequence_type=invoice_type,
        company=fiscalyear.company,
        prefix=f"CN{year}-",
    )
    credit_notes.save()
    (sequences,) = fiscalyear.invoice_sequences
    sequences.out_invoice_sequence = invoices
    sequences.in_invoice_sequence = invoices
    sequences.out_credit_note_sequence = credit_notes
    sequences.in_credit_note_sequence = credit_notes


def _product(code, name, kind, list_price, cost_price, unit, category):
    Template = Model.get("product.template")
    template = Template(
        name=name,
        code=code,
        type=kind,
        default_uom=unit,
        salable=True,
        list_price=list_price,
        account_category=category,
        lead_time=dt.timedelta(0),
    )
    template.save()
    (product,) = template.products
    product.cost_price = cost_price
    product.save()
    return product


def _customer(name, email, phone, street, city, postal_code, country):
    Party = Model.get("party.party")
    party = Party(name=name)
    (address,) = party.addresses
    address.street = street
    address.city = city
    address.postal_code = postal_code
    address.country = country
    party.contact_mechanisms.new(type="email", value=email)
    party.contact_mechanisms.new(type="phone", value=phone)
    party.save()
    return party


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="trytond.conf")
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    seed(args.database, args.config)
