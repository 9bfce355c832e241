"""What a reconciliation check is: a small class, registered by name, that examines business keys in
bounded pages and says for each whether the systems agree.

A check reads peers only through their connectors' ``lookup``/``operate``/``poll`` (never their
databases) and writes a repair only through the ledger of writes to other systems
(``side_effect_perform``: intent first, looked up before re-writing), so a repair repeated after a
crash or by two operators writes once.

Writing a check:

1. subclass ``Check``; set ``name``, ``title``, ``systems``, ``every_s`` (its default schedule) and
   ``defaults`` (options ops may override in the check's configuration);
2. ``examine(ctx)`` yields one ``Finding`` per business key examined, ``ok=True`` when the systems
   agree (that closes an open discrepancy for the key) — page through the data (keyset, cursor),
   never load it whole;
3. if some findings can be fixed, mark them ``repairable`` and implement ``repair(discrepancy,
   ctx)``: with ``ctx.dry_run`` it returns the plan and writes nothing;
4. register it with ``@register`` in a module ``reconciliation/checks/__init__.py`` imports.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from canonical.errors import ConflictError, DomainError, NotFoundError
from hub.connections.models import Connection
from hub.ledger.services import side_effect_perform


@dataclass(frozen=True)
class Finding:
    """What a check concluded about one business key."""

    business_key: str
    ok: bool
    kind: str = ""  # what disagrees, e.g. "missing_shipment"; empty when ok
    summary: str = ""  # one line an operator understands
    systems: tuple[str, ...] = ()
    expected: dict[str, Any] = field(default_factory=dict)  # what the system of record says
    found: dict[str, Any] = field(default_factory=dict)  # what the others say
    severity: str = "warning"
    repairable: bool = False
    external_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Write:
    """One planned write to another system, made through the ledger (``writes_perform``)."""

    operation: str
    business_key: str
    payload: dict[str, Any]


def writes_perform(
    connection: Connection, writes: list[Write], *, dry_run: bool, **plan: Any
) -> dict[str, Any]:
    """What a repair returns: with ``dry_run`` the plan (and ``plan``'s extra keys), else each write made
    once through the ledger (intent first, looked up before re-writing) as ``writes``."""
    if dry_run:
        return {"plan": [asdict(w) for w in writes], **plan}
    done = []
    for write in writes:
        effect = side_effect_perform(
            connection=connection,
            operation=write.operation,
            business_key=write.business_key,
            payload=write.payload,
        )
        done.append(
            {"side_effect": str(effect.pk), "operation": write.operation, "external_id": effect.external_id}
        )
    return {"writes": done}


class NotRepairable(ConflictError):
    """The check cannot repair this discrepancy (an operator must): 409 in the API."""

    slug = "not-repairable"
    title = "Not repairable"


class RepairFailed(DomainError):
    """The repair's write to another system failed; the discrepancy is open again with the error."""

    status = 502
    slug = "repair-failed"
    title = "Repair failed"


@dataclass
class CheckContext:
    """What a check gets for one run (or one repair)."""

    options: dict[str, Any]
    dry_run: bool = False
    scope: dict[str, Any] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)  # the check's own figures, kept in the run's report

    def connection(self, role: str) -> Connection:
        """The active connection for ``role`` (``erp``, ``tms``, ``crm``, a carrier feed): the slug in
        the options' ``connections`` when set, else the only active connection of that system."""
        slug = (self.options.get("connections") or {}).get(role)
        if slug:
            connection = Connection.objects.filter(slug=slug, is_active=True).first()
            if connection is None:
                raise NotFoundError(f"reconciliation: no active connection {slug!r} for {role}")
            return connection
        candidates = list(Connection.objects.filter(system=role, is_active=True)[:2])
        if len(candidates) != 1:
            raise NotFoundError(
                f"reconciliation: name the {role} connection in the check's options (connections.{role});"
                f" {len(candidates)} active {role} connections found"
            )
        return candidates[0]

    def keys(self) -> list[str] | None:
        """The business keys the run is limited to, or None for all."""
        references = self.scope.get("references")
        return [str(r) for r in references] if references else None


class Check:
    """Base of every check. Subclasses set the class attributes and implement ``examine``."""

    name: ClassVar[str]
    title: ClassVar[str]
    systems: ClassVar[tuple[str, ...]]
    every_s: ClassVar[int] = 3600  # default schedule; ops edit it in the check's periodic task
    defaults: ClassVar[dict[str, Any]] = {}
    page_size: ClassVar[int] = 500  # keys compared per bounded batch
    scope_keys: ClassVar[tuple[str, ...]] = ()  # keys a run's scope may carry besides "references"

    def options(self, overrides: dict[str, Any] | None) -> dict[str, Any]:
        return {**self.defaults, **(overrides or {})}

    def examine(self, ctx: CheckContext) -> Iterator[Finding]:
        raise NotImplementedError

    def estimate(self, ctx: CheckContext) -> int | None:
        """How many keys ``examine`` will yield, when cheap to tell (a count query): the progress bar."""
        return None

    def repair(self, discrepancy: Any, ctx: CheckContext) -> dict[str, Any]:
        """Fix one discrepancy through the ledger; returns what was (or, dry run, would be) written."""
        raise NotRepairable(f"{self.name} does not repair discrepancies; resolve or ignore with a reason")


_checks: dict[str, Check] = {}


def register(cls: type[Check]) -> type[Check]:
    if cls.name in _checks and type(_checks[cls.name]) is not cls:
        raise ValueError(f"reconciliation check {cls.name!r} is already registered")
    _checks[cls.name] = cls()
    return cls


def unregister(name: str) -> None:
    _checks.pop(name, None)


def get(name: str) -> Check:
    try:
        return _checks[name]
    except KeyError:
        raise NotFoundError(
            f"no reconciliation check {name!r}; known: {', '.join(sorted(_checks))}"
        ) from None


def all_checks() -> list[Check]:
    return [_checks[name] for name in sorted(_checks)]
