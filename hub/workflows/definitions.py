"""How a flow is declared: ordered steps, each an idempotent function with an optional compensation.

A step function gets a ``StepContext`` and returns ``Done(outputs)`` or ``Wait(for_what, ...)``
(the external fact is not there yet: look again later; escalate when the step's SLA passes). It may
raise the connector taxonomy's errors: TransientError is retried with back-off, anything permanent
fails the step (and, where the flow says so, compensates the run). Steps write to external systems
only through ``ctx.perform`` (the side-effect ledger), so re-running a step after a crash never
makes a second record.

Flows are versioned: a run keeps the version it started on, and the registry keeps every version
that may still have runs, so a deploy that changes a flow never strands one that is half done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.connections.models import Connection
from hub.ledger.services import side_effect_perform

if TYPE_CHECKING:
    from hub.workflows.models import WorkflowRun, WorkflowStep


@dataclass(frozen=True)
class Done:
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    waiting_for: str  # shown to operators, e.g. "proof of delivery for S-1001"
    check_again_s: float = 60.0  # seconds until the engine looks again (a signal may wake it sooner)


@dataclass
class StepContext:
    run: WorkflowRun
    step: WorkflowStep
    inputs: dict[str, Any]
    context: dict[str, Any]  # outputs of finished steps, by step name

    def output(self, step: str, key: str, default: Any = None) -> Any:
        return self.context.get(step, {}).get(key, default)

    def perform(self, *, connection: str, operation: str, business_key: str, payload: dict[str, Any]) -> Any:
        """One write through the side-effect ledger; returns the SideEffect (``external_id``, ``result``).

        ``connection`` is a slug, or a role (``erp``/``tms``/``crm``) of the flow's FlowConfig.
        """
        slug = self.connections.get(connection, connection)
        target = Connection.objects.get(slug=slug)
        return side_effect_perform(
            connection=target, operation=operation, business_key=business_key, payload=payload
        )

    @property
    def connections(self) -> dict[str, str]:
        return self.inputs.get("connections", {})

    def follow(self, subject: str) -> None:
        """From now on, milestones of shipment ``subject`` wake this run."""
        if self.run.subject != subject:
            self.run.subject = subject
            self.run.save(update_fields=["subject", "updated_at"])


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[StepContext], Done | Wait]
    compensate: Callable[[StepContext], dict[str, Any]] | None = None
    sla_s: float | None = None  # seconds a waiting step may wait before it is escalated
    max_attempts: int = 10  # transient failures before the step fails
    retry_base_s: float = 5.0  # back-off base, seconds (exponential with jitter)
    description: str = ""


@dataclass(frozen=True)
class Flow:
    key: str
    version: int
    steps: tuple[Step, ...]
    description: str = ""
    compensate_on_failure: bool = False  # a permanent step failure undoes the completed steps
    on_escalate: Callable[[StepContext], None] | None = None
    #: Connection roles the flow writes through and the operations each must offer, e.g.
    #: {"erp": ("invoice.post",)}; checked when ops staff switch the flow on.
    requires: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"flow {self.key} v{self.version} has no step {name!r}")


_FLOWS: dict[tuple[str, int], Flow] = {}


def register(flow: Flow) -> Flow:
    """Add a flow version to the registry; a (key, version) may be registered once."""
    key = (flow.key, flow.version)
    if key in _FLOWS and _FLOWS[key] is not flow:
        raise ValueError(f"flow {flow.key} v{flow.version} is registered twice")
    names = [step.name for step in flow.steps]
    if len(set(names)) != len(names):
        raise ValueError(f"flow {flow.key} v{flow.version} has duplicate step names")
    _FLOWS[key] = flow
    return flow


def get(key: str, version: int | None = None) -> Flow:
    if version is None:
        versions = [v for (k, v) in _FLOWS if k == key]
        if not versions:
            raise KeyError(f"no flow {key!r}; known: {', '.join(sorted({k for k, _ in _FLOWS}))}")
        version = max(versions)
    try:
        return _FLOWS[(key, version)]
    except KeyError:
        raise KeyError(f"flow {key!r} has no version {version}") from None


def all_flows() -> list[Flow]:
    return [_FLOWS[key] for key in sorted(_FLOWS)]
