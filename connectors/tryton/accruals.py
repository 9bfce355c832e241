"""Freight accruals in Tryton's general ledger: ``freight.accrue`` and ``freight.accrual_reverse``.

At a period close, a delivered shipment whose carrier invoice has not arrived still cost its freight
in that period: an accrual books the expected cost (debit the freight expense account, credit the
accrued-expenses account) as a posted ``account.move`` dated the period end. When the carrier's
invoice arrives, a reversing move (the same lines, debit and credit swapped) dated the arrival (never
before the day after the accrued period) takes it out again.

Tryton 8.0's ``account`` module over JSON-RPC: ``account.move.create`` with ``journal``, ``period``,
``date``, ``description`` and ``lines: [["create", [{account, debit, credit, description}]]]``, then
the ``post`` button (which numbers the move); a posted move cannot be changed or deleted. Moves have
no reference field, so each move is found again by its description, which ends in a marker naming
the operation, the shipment and the period: a re-run, or the ledger's lookup after an attempt whose
outcome was not recorded, finds the move instead of booking it twice. A draft left by an interrupted
attempt is posted as it is.

Payload (canonical JSON from the hub): ``shipment`` (reference), ``period`` (``YYYY-MM``), ``date``
(ISO date of the move), ``amount`` (decimal, > 0), ``currency`` (must be the company's: the hub
books no exchange), ``carrier`` (SCAC, in the description), ``journal`` (code, default ``MISC``),
``accrual_account`` (code), ``expense_account`` (code; default: the expense account of the product
``freight_product``, default ``FREIGHT``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import OperationResult
from connectors.errors import PermanentError
from connectors.tryton.client import TrytonClient

ACCRUE = "freight.accrue"
REVERSE = "freight.accrual_reverse"
_MOVE_FIELDS = ["number", "state", "date", "description", "lines", "period"]
_LINE_FIELDS = ["account", "debit", "credit", "description"]


def marker(operation: str, payload: Mapping[str, Any]) -> str:
    return f"[crossdock {operation} {_text(payload, 'shipment')}@{_text(payload, 'period')}]"


def description(operation: str, payload: Mapping[str, Any]) -> str:
    shipment, period = _text(payload, "shipment"), _text(payload, "period")
    carrier = str(payload.get("carrier") or "").strip()
    what = "Freight accrual" if operation == ACCRUE else "Reversal of freight accrual"
    return (
        f"{what} {shipment} {period}"
        + (f" ({carrier})" if carrier else "")
        + f" {marker(operation, payload)}"
    )


def accrual_lines(*, expense: int, accrual: int, amount: Decimal, label: str) -> list[dict[str, Any]]:
    """Debit the freight expense, credit the accrued expenses. Pure."""
    zero = Decimal("0")
    return [
        {"account": expense, "debit": amount, "credit": zero, "description": label},
        {"account": accrual, "debit": zero, "credit": amount, "description": label},
    ]


def reversal_lines(lines: list[Mapping[str, Any]], *, label: str) -> list[dict[str, Any]]:
    """The accrual's lines with debit and credit swapped. Pure."""
    return [
        {
            "account": line["account"],
            "debit": Decimal(str(line["credit"])),
            "credit": Decimal(str(line["debit"])),
            "description": label,
        }
        for line in lines
    ]


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = str(payload.get(name) or "").strip()
    if not value:
        raise PermanentError(f"payload has no {name}")
    return value


def _amount(payload: Mapping[str, Any]) -> Decimal:
    try:
        amount = Decimal(str(payload.get("amount"))).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise PermanentError(f"payload amount {payload.get('amount')!r} is not a decimal") from None
    if amount <= 0:
        raise PermanentError(f"payload amount must be above 0 to accrue, got {payload.get('amount')!r}")
    return amount


def _date(payload: Mapping[str, Any]) -> dt.date:
    try:
        return dt.date.fromisoformat(_text(payload, "date")[:10])
    except ValueError:
        raise PermanentError(f"payload date {payload.get('date')!r} is not an ISO date") from None


def _one(client: TrytonClient, model: str, domain: list[Any], what: str) -> int:
    found = client.call(f"model.{model}.search", domain, 0, 2, None)
    if len(found) != 1:
        raise PermanentError(f"Tryton has {'no' if not found else 'several'} {what}")
    return found[0]


def _account(client: TrytonClient, code: str) -> int:
    return _one(
        client, "account.account", [["code", "=", code], ["closed", "=", False]], f"open account {code!r}"
    )


def _expense_account(client: TrytonClient, payload: Mapping[str, Any]) -> int:
    code = str(payload.get("expense_account") or "").strip()
    if code:
        return _account(client, code)
    product_code = str(payload.get("freight_product") or "FREIGHT").strip()
    rows = client.call(
        "model.product.product.search_read",
        [["code", "=", product_code]],
        0,
        2,
        None,
        ["account_category.account_expense"],
    )
    expense = ((rows[0].get("account_category.") or {}).get("account_expense")) if len(rows) == 1 else None
    if not expense:
        raise PermanentError(
            f"no expense account to accrue on: send expense_account, or give product {product_code!r} "
            "an account category with an expense account"
        )
    return expense


def _period(client: TrytonClient, day: dt.date) -> int:
    return _one(
        client,
        "account.period",
        [
            ["start_date", "<=", day],
            ["end_date", ">=", day],
            ["type", "=", "standard"],
            ["state", "=", "open"],
        ],
        f"open standard period on {day.isoformat()}",
    )


def _company_currency(client: TrytonClient, payload: Mapping[str, Any]) -> None:
    currency = _text(payload, "currency").upper()
    company = client.company or client.session().context.get("company")
    (row,) = client.call("model.company.company.read", [company], ["currency.code"])
    own = (row.get("currency.") or {}).get("code")
    if own and own != currency:
        raise PermanentError(
            f"the accrual is in {currency} and the company books in {own}: accrue it by hand"
        )


def _move_find(client: TrytonClient, text: str) -> dict[str, Any] | None:
    rows = client.call(
        "model.account.move.search_read", [["description", "=", text]], 0, 2, [["id", "ASC"]], _MOVE_FIELDS
    )
    return rows[0] if rows else None


def _result(move: Mapping[str, Any], payload: Mapping[str, Any], kind: str, **extra: Any) -> OperationResult:
    date = move.get("date")
    return OperationResult(
        external_id=str(move["id"]),
        data={
            "move_id": move["id"],
            "number": move.get("number"),
            "state": move.get("state"),
            "kind": kind,
            "date": date.isoformat() if isinstance(date, dt.date) else date,
            "shipment": payload.get("shipment"),
            "period": payload.get("period"),
            "amount": str(payload.get("amount")),
            "currency": payload.get("currency"),
            **extra,
        },
    )


def _post(client: TrytonClient, move: Mapping[str, Any], text: str) -> dict[str, Any]:
    if move["state"] != "posted":
        client.call("model.account.move.post", [move["id"]])
    found = _move_find(client, text)
    assert found is not None
    return found


def _create(client: TrytonClient, payload: Mapping[str, Any], day: dt.date, text: str, lines: list) -> dict:
    journal = _one(
        client,
        "account.journal",
        [["code", "=", str(payload.get("journal") or "MISC")]],
        "journal for accruals",
    )
    (move_id,) = client.call(
        "model.account.move.create",
        [
            {
                "journal": journal,
                "period": _period(client, day),
                "date": day,
                "description": text,
                "lines": [["create", lines]],
            }
        ],
    )
    (move,) = client.call("model.account.move.read", [move_id], _MOVE_FIELDS)
    return move


def accrue(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult:
    """Post the accrual move of the shipment and period once (found again by its marker)."""
    text = description(ACCRUE, payload)
    existing = _move_find(client, text)
    if existing is None:
        amount, day = _amount(payload), _date(payload)
        _company_currency(client, payload)
        lines = accrual_lines(
            expense=_expense_account(client, payload),
            accrual=_account(client, _text(payload, "accrual_account")),
            amount=amount,
            label=f"Freight accrual {payload['shipment']}",
        )
        existing = _create(client, payload, day, text, lines)
    return _result(_post(client, existing, text), payload, "accrual")


def accrue_lookup(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult | None:
    found = _move_find(client, description(ACCRUE, payload))
    if found is None or found["state"] != "posted":
        return None
    return _result(found, payload, "accrual")


def reverse(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult:
    """Post the reversal of the shipment's accrual for the period once. The accrual must be posted
    (PermanentError otherwise: nothing to reverse)."""
    text = description(REVERSE, payload)
    existing = _move_find(client, text)
    if existing is None:
        accrual = _move_find(client, description(ACCRUE, payload))
        if accrual is None or accrual["state"] != "posted":
            raise PermanentError(
                f"no posted freight accrual for {payload.get('shipment')} in {payload.get('period')} to reverse"
            )
        lines = client.call("model.account.move.line.read", accrual["lines"], _LINE_FIELDS)
        day = max(_date(payload), accrual["date"] + dt.timedelta(days=1))
        label = f"Reversal of freight accrual {payload['shipment']}"
        existing = _create(client, payload, day, text, reversal_lines(lines, label=label))
        accrual_id = accrual["id"]
    else:
        accrual_id = None
    return _result(_post(client, existing, text), payload, "reversal", reverses=accrual_id)


def reverse_lookup(client: TrytonClient, payload: Mapping[str, Any]) -> OperationResult | None:
    found = _move_find(client, description(REVERSE, payload))
    if found is None or found["state"] != "posted":
        return None
    return _result(found, payload, "reversal")
