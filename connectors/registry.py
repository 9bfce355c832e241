"""Connector registry by stable key: built-ins plus the ``crossdock.connectors`` entry-point group.

Specs are imported lazily on first use (healthchecks' TRANSPORTS); the list of keys is checked at
start-up (``check_keys``), so a duplicate key stops the hub instead of surprising it later.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import entry_points

from connectors.base import ConnectorSpec

ENTRY_POINT_GROUP = "crossdock.connectors"

BUILTINS: dict[str, str] = {
    "canonical": "connectors.canonical:CONNECTOR",
    "webhook": "connectors.webhook:CONNECTOR",
    "tryton": "connectors.tryton:CONNECTOR",
    "karrio": "connectors.karrio:CONNECTOR",
    "bottlecrm": "connectors.bottlecrm:CONNECTOR",
    "x12": "connectors.x12:CONNECTOR",
    "dcsa": "connectors.dcsa:CONNECTOR",
}


class RegistryError(Exception):
    pass


class UnknownConnectorError(RegistryError):
    pass


@cache
def _targets() -> dict[str, str]:
    targets = dict(BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in targets:
            raise RegistryError(
                f"connector key {ep.name!r} is registered twice ({targets[ep.name]} and {ep.value}); keys must be unique"
            )
        targets[ep.name] = ep.value
    return targets


def check_keys() -> list[str]:
    """All registered keys; raises RegistryError on a duplicate. Called at start-up."""
    return sorted(_targets())


def keys() -> list[str]:
    return sorted(_targets())


@cache
def get(key: str) -> ConnectorSpec:
    target = _targets().get(key)
    if target is None:
        raise UnknownConnectorError(f"no connector {key!r}; installed: {', '.join(keys())}")
    module_name, _, attr = target.partition(":")
    spec = getattr(import_module(module_name), attr)
    if not isinstance(spec, ConnectorSpec) or spec.key != key:
        raise RegistryError(f"{target} is not a ConnectorSpec with key {key!r}")
    return spec


def all_specs() -> list[ConnectorSpec]:
    return [get(key) for key in keys()]
