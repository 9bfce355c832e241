"""Field and code mappings as data (pure: no ORM, no I/O).

A connector ships default mappings in ``connectors/<key>/mappings/<direction>.json``::

    {"fields": {"<canonical field>": "<dotted path in the native document>", ...},
     "codes": {"<code set>": {"<native code>": "<canonical value>", ...}, ...}}

Ops staff override them per connection and direction in the admin (``hub.mappings``); the hub hands
the connector the published result as a ``MappingSet``. A code with no mapping raises
``MappingError`` naming the code set and the code, so the document dead-letters at stage ``map``
instead of being dropped or guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.errors import MappingError

DIRECTIONS = ("inbound", "outbound")
_MISSING = object()


@dataclass(frozen=True)
class MappingSet:
    """One connection's mappings for one direction. ``version`` 0 means the connector's defaults."""

    fields: Mapping[str, str] = field(default_factory=dict)
    codes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    version: int = 0

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None, *, version: int = 0) -> MappingSet:
        data = data or {}
        return cls(
            fields=dict(data.get("fields") or {}),
            codes={name: dict(table) for name, table in (data.get("codes") or {}).items()},
            version=version,
        )

    def code(self, code_set: str, value: Any, *, field: str) -> str:
        """The canonical value for a native code. Raises MappingError naming both when unmapped.

        Codes are compared as stripped strings; a table may hold ``"*"`` as a catch-all.
        """
        table = self.codes.get(code_set)
        if table is None:
            raise MappingError(f"no code map {code_set!r} is configured", field=field, value=value)
        key = "" if value is None else str(value).strip()
        if key in table:
            return table[key]
        if "*" in table:
            return table["*"]
        raise MappingError(f"unmapped {code_set} code {key!r}", field=field, value=value)

    def path(self, name: str, default: str) -> str:
        """The dotted source path configured for canonical field ``name`` (else ``default``)."""
        return self.fields.get(name, default)

    def get(self, document: Any, name: str, default_path: str, default: Any = None) -> Any:
        """Read canonical field ``name`` from ``document`` through its configured path."""
        value = dig(document, self.path(name, default_path), _MISSING)
        return default if value is _MISSING else value

    def as_data(self) -> dict[str, Any]:
        return {"fields": dict(self.fields), "codes": {k: dict(v) for k, v in self.codes.items()}}


def dig(document: Any, path: str, default: Any = None) -> Any:
    """Follow a dotted path through dicts and lists (``parcels.0.reference_number``)."""
    current = document
    for part in path.split(".") if path else []:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list | tuple)
            and part.lstrip("-").isdigit()
            and -len(current) <= int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return default
    return current


def merge(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Connector defaults overlaid with a connection's own entries (per field, per code)."""
    base, override = base or {}, override or {}
    codes: dict[str, dict[str, str]] = {k: dict(v) for k, v in (base.get("codes") or {}).items()}
    for name, table in (override.get("codes") or {}).items():
        codes.setdefault(name, {}).update(table)
    return {"fields": {**(base.get("fields") or {}), **(override.get("fields") or {})}, "codes": codes}


def validate(data: Any, targets: Mapping[str, Any] | None = None) -> list[str]:
    """Problems with a mapping document, as readable strings (empty when valid).

    ``targets`` is the connector's ``mapping_targets``: allowed canonical values per code set and
    the canonical field names a field map may set.
    """
    targets = targets or {}
    problems: list[str] = []
    if not isinstance(data, Mapping):
        return ["a mapping must be a JSON object with 'fields' and 'codes'"]
    unknown = set(data) - {"fields", "codes"}
    if unknown:
        problems.append(
            f"unknown top-level key(s): {', '.join(sorted(unknown))}; expected 'fields' and 'codes'"
        )
    fields = data.get("fields") or {}
    if not isinstance(fields, Mapping):
        problems.append("'fields' must be an object of canonical field -> source path")
        fields = {}
    allowed_fields = targets.get("fields")
    for name, path in fields.items():
        if not isinstance(path, str) or not path.strip():
            problems.append(f"fields.{name}: the source path must be a non-empty string")
        if allowed_fields is not None and name not in allowed_fields:
            problems.append(
                f"fields.{name}: not a mappable field; expected one of {', '.join(allowed_fields)}"
            )
    codes = data.get("codes") or {}
    if not isinstance(codes, Mapping):
        return [*problems, "'codes' must be an object of code set -> {native code: canonical value}"]
    allowed_codes: Mapping[str, Any] = targets.get("codes") or {}
    for code_set, table in codes.items():
        if not isinstance(table, Mapping):
            problems.append(f"codes.{code_set}: must be an object of native code -> canonical value")
            continue
        if allowed_codes and code_set not in allowed_codes:
            problems.append(
                f"codes.{code_set}: unknown code set; expected one of {', '.join(sorted(allowed_codes))}"
            )
            continue
        allowed = allowed_codes.get(code_set)
        for native, canonical in table.items():
            if not isinstance(canonical, str) or not canonical:
                problems.append(f"codes.{code_set}.{native}: the canonical value must be a non-empty string")
            elif allowed is not None and canonical not in allowed:
                problems.append(
                    f"codes.{code_set}.{native}: {canonical!r} is not a canonical value; expected one of "
                    f"{', '.join(allowed)}"
                )
    return problems


def mappings_or_defaults(mappings: Any, defaults: Mapping[str, Any], direction: str) -> MappingSet:
    """The ``MappingSet`` the hub passed (the connection's published mappings) or, when it passed
    none, the connector's packaged ``defaults`` (``load_defaults``) for ``direction``."""
    if isinstance(mappings, MappingSet):
        return mappings
    return MappingSet.from_data(defaults.get(direction))


def load_defaults(package_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Read ``mappings/<direction>.json`` next to a connector's ``__init__`` (missing files: empty)."""
    root = Path(package_dir)
    if root.suffix == ".py":  # called with a package's __file__
        root = root.parent
    defaults: dict[str, dict[str, Any]] = {}
    for direction in DIRECTIONS:
        path = root / "mappings" / f"{direction}.json"
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            problems = validate(data)
            if problems:
                raise ValueError(f"{path}: {'; '.join(problems)}")
            defaults[direction] = data
    return defaults
