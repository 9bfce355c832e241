"""`x12`: ANSI X12 transportation documents: 214, 990, 210, 204 and 997 in; 204 and 997 out.

Inbound (``parse`` then ``map``), pure:
- ``parse`` reads the message as it comes (delimiters from ISA, any terminator, BOM, CRLF,
  indentation, non-fixed-width ISA, several interchanges/groups/sets, bare ST..SE) and checks every
  envelope (``parser`` module docstring: the full table of problems and what each rejects).
  It returns one document per transaction set, including rejected ones (they carry their reasons),
  the non-fatal problems as strings (a faulty but readable envelope, e.g. IEA02 not ISA13, is one
  of them: its sets are still returned), ``acknowledgements``: one group result per received
  group, which the hub renders with ``render_997`` and sends back to the partner (the first of an
  interchange carrying the TA1 when one is due: ``send_ta1``), and ``interchange_acknowledgements``:
  TA1s due for interchanges no 997 answers (``render_ta1``). A message that cannot be read (no
  ISA/GS/ST, ISA delimiters unreadable, IEA missing) raises ParseError naming the segment, its line
  and what was expected vs found.
- ``map`` turns one set into canonical documents (``translate`` module): 214 -> milestones,
  990 -> TENDER_ACCEPTED/REJECTED, 210 -> ``freight_charge``, 204 -> ``shipment``,
  997 -> ``functional_ack``. A rejected set raises ParseError (stage parse) with its reasons.

Outbound: ``render.render_204``, ``render.render_997`` and ``render.render_ta1`` (pure, control
numbers from the caller).
There is no ``send``: files travel through the hub's drop-folder transport.

Why our own parser (docs/subsystems/x12.md has the evaluation): pyx12 is HIPAA-oriented and
refused 6 of the 8 samples (BOM, bare sets, non-fixed-width ISA, ISA12 00400); pyedi wraps pyx12;
badX12 does not import on Python 3.12; Bots is GPL-3.0 and a whole translator. The envelope is a
small, well-specified grammar: the reader and envelope checks are ~1,000 lines (with their docs), tested by
golden, broken-variant and fuzz tests.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from canonical.contracts.v1 import EventType
from connectors.base import (
    Connector,
    ConnectorSpec,
    InboundRequest,
    Operation,
    OperationContext,
    OperationResult,
    ParseResult,
)
from connectors.errors import AuthError, ParseError, PermanentError, TransientError
from connectors.mapping import mappings_or_defaults
from connectors.x12 import documents as x12_documents
from connectors.x12 import parser as x12_parser
from connectors.x12 import translate
from connectors.x12.render import (
    DEFAULT_MAPPINGS,
    ControlNumbers,
    next_control_number,
    render_204,
    render_997,
    render_ta1,
)

__all__ = [
    "CONNECTOR",
    "Config",
    "ControlNumbers",
    "next_control_number",
    "render_204",
    "render_997",
    "render_ta1",
]

NATURAL_ID_SCAN_CHARS = 400  # characters read by natural_id (an ISA is 106; BOM and whitespace allowed)


class Config(BaseModel):
    """One trading partner. ``sender_*`` is Crossdock's side (ISA05/06 and GS02 of what we send, ISA07/08
    of what we receive); ``receiver_*`` is the partner's. Delimiters and versions apply to outbound."""

    model_config = ConfigDict(extra="forbid")

    sender_id_qualifier: str = Field(default="ZZ", pattern=r"^[A-Z0-9]{2}$")
    sender_id: str = Field(default="", max_length=15)
    receiver_id_qualifier: str = Field(default="ZZ", pattern=r"^[A-Z0-9]{2}$")
    receiver_id: str = Field(default="", max_length=15)
    gs_sender_code: str = Field(default="", max_length=15, description="GS02; default: sender_id")
    gs_receiver_code: str = Field(default="", max_length=15, description="GS03; default: receiver_id")
    usage_indicator: Literal["P", "T"] = "P"
    interchange_version: str = Field(default="00401", pattern=r"^\d{5}$")
    group_version: str = Field(default="004010", pattern=r"^\d{6}[A-Z0-9]{0,6}$")
    element_separator: str = Field(default="*", min_length=1, max_length=1)
    segment_terminator: str = Field(default="~", min_length=1, max_length=1)
    component_separator: str = Field(default=">", min_length=1, max_length=1)
    repetition_separator: str = Field(default="^", min_length=1, max_length=1)
    newline_after_segment: bool = False
    acknowledgment_requested: bool = False
    send_997: bool = Field(default=True, description="acknowledge every received group with a 997")
    send_ta1: Literal["requested", "errors", "always", "never"] = Field(
        default="requested",
        description="TA1 interchange acknowledgment: when the partner asks (ISA14 = 1), also when the "
        "envelope had a fault (errors), for every interchange (always), or never.",
    )
    outbound_url: HttpUrl | None = Field(
        default=None,
        description="Where outbound interchanges (997s, 204 tenders) are POSTed as application/edi-x12 "
        "(the partner's AS2/HTTP gateway); empty: nothing is sent.",
    )
    timeout_s: float = Field(default=30, gt=0, le=300, description="Seconds to wait for the partner.")

    @model_validator(mode="after")
    def _delimiters_distinct(self) -> Config:
        delimiters = [
            self.element_separator,
            self.segment_terminator,
            self.component_separator,
            self.repetition_separator,
        ]
        if len(set(delimiters)) != len(delimiters):
            raise ValueError("element, segment, component and repetition separators must all differ")
        if any(ch.isalnum() or ch == " " for ch in delimiters):
            raise ValueError("a delimiter cannot be a letter, digit or space")
        return self


def _control_numbers(operation: str, payload: dict[str, Any]) -> ControlNumbers:
    try:
        return ControlNumbers(**payload["control"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"{operation}: control numbers missing or invalid: {exc}") from None


def _ack_ta1(payload: dict[str, Any], ctx: OperationContext) -> tuple[bytes, int, ControlNumbers | None]:
    try:  # a TA1 has no group: only its ISA13 is drawn
        number = payload["control"]["interchange"]
        body = render_ta1(payload["interchange"], ctx.config, control=number)
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"ack.ta1: control numbers missing or invalid: {exc}") from None
    return body, number, None


def _ack_997(payload: dict[str, Any], ctx: OperationContext) -> tuple[bytes, int, ControlNumbers | None]:
    control = _control_numbers("ack.997", payload)
    return render_997(payload["group"], ctx.config, control=control), control.interchange, control


def _tender_204(payload: dict[str, Any], ctx: OperationContext) -> tuple[bytes, int, ControlNumbers | None]:
    control = _control_numbers("tender.204", payload)
    body = render_204(
        payload["shipment"],
        ctx.config,
        control=control,
        mappings=mappings_or_defaults(ctx.mappings, DEFAULT_MAPPINGS, "outbound"),
    )
    return body, control.interchange, control


class X12Connector(Connector):
    #: Outbound interchanges, POSTed to ``config.outbound_url``. The payload carries the control
    #: numbers the hub drew from its durable per-connection counter (``control``: interchange, group,
    #: transaction_set), so a resend after a crash is byte-for-byte the same interchange and the
    #: partner's duplicate check recognises it. Each entry renders ``(payload, ctx)`` to
    #: ``(body, ISA13, control numbers or None)``; ``operate`` sends what it rendered.
    operation_table = {
        "ack.997": Operation(perform=_ack_997),
        "ack.ta1": Operation(perform=_ack_ta1),
        "tender.204": Operation(perform=_tender_204),
    }
    acknowledge_operation = "ack.997"
    #: The operation that sends a TA1 for a received interchange (``interchange_acknowledgements``);
    #: its payload carries only ``control.interchange`` (a TA1 has no group).
    interchange_acknowledge_operation = "ack.ta1"

    def operate(self, operation: str, payload: dict[str, Any], ctx: OperationContext) -> OperationResult:
        config = ctx.config
        render = self.operation_get(operation, owner="x12", error=PermanentError).perform
        body, number, control = render(payload, ctx)
        if config.outbound_url is None:
            raise PermanentError(
                f"{operation}: the connection has no outbound_url to send the interchange to"
            )
        status, _headers, response, _ms = ctx.client.request(
            "POST", str(config.outbound_url), headers={"Content-Type": "application/edi-x12"}, body=body
        )
        excerpt = response[:200].decode("utf-8", "replace")
        if status in (401, 403):
            raise AuthError(f"partner refused the interchange: HTTP {status} {excerpt}", status_code=status)
        if status in (408, 429) or status >= 500:
            raise TransientError(f"partner answered HTTP {status} {excerpt}", status_code=status)
        if not 200 <= status < 300:
            raise PermanentError(
                f"partner rejected the interchange: HTTP {status} {excerpt}", status_code=status
            )
        return OperationResult(
            external_id=f"{number:09d}",
            data={"interchange": number, "group": control and control.group, "bytes": len(body)},
        )

    def natural_id(self, request: InboundRequest, config: BaseModel) -> str | None:
        """``isa:<ISA05>:<ISA06>:<ISA13>``: a resent interchange is the same message. None for bare sets."""
        head = request.body[: NATURAL_ID_SCAN_CHARS * 4]
        try:
            text, _ = x12_parser.decode(head)
        except ParseError:
            return None
        text = text.lstrip()
        if not text.startswith("ISA"):
            return None
        try:
            delims, length, _ = x12_parser.isa_delimiters(text, 0, x12_parser._Lines(text))
        except ParseError:
            return None
        isa = text[:length].split(delims.element)
        if len(isa) < 14 or not isa[13].strip():
            return None
        return f"isa:{isa[5].strip()}:{isa[6].strip()}:{isa[13].strip()}"

    def parse(self, request: InboundRequest, config: BaseModel) -> ParseResult:
        try:
            reading = x12_parser.read(request.body)
        except ParseError as exc:
            kind = request.content_type.split(";")[0].strip().lower()
            if kind == "application/json":
                raise ParseError(f"{exc.detail}; the x12 connector reads X12 text, not {kind}") from None
            raise
        problems = [str(p) for p in reading.all_problems()]
        acknowledgements, interchange_acknowledgements = x12_documents.acknowledgements(
            reading,
            send_997=getattr(config, "send_997", True),
            send_ta1=getattr(config, "send_ta1", "requested"),
        )
        return ParseResult(
            documents=x12_documents.documents(reading),
            problems=problems,
            acknowledgements=acknowledgements,
            interchange_acknowledgements=interchange_acknowledgements,
        )

    def map(self, document: Any, config: BaseModel, mappings: Any) -> list[dict[str, Any]]:
        if document.get("rejected"):
            raise ParseError(
                "transaction set rejected: " + "; ".join(document["rejected"]),
                position=f"{document.get('set')} {document.get('control_number')!r} at line {document.get('line')}",
            )
        return translate.map_set(document, mappings_or_defaults(mappings, DEFAULT_MAPPINGS, "inbound"))


_EVENT_TARGETS = [*(e.value for e in EventType), translate.IGNORE]

CONNECTOR = ConnectorSpec(
    key="x12",
    label="ANSI X12 (204, 210, 214, 990, 997)",
    system="partner",
    version="1.0",
    config_schema=Config,
    connector=X12Connector,
    # map: 214/990 -> milestones, 204 -> shipment, 210 -> freight_charge, 997 -> functional_ack
    document_kinds=frozenset({"milestone", "shipment", "freight_charge", "functional_ack"}),
    description=(
        "Reads X12 214 status, 990 tender response, 210 freight invoice, 204 load tender and 997 "
        "acknowledgment interchanges with envelope validation; renders 204 tenders and 997s."
    ),
    default_mappings=DEFAULT_MAPPINGS,
    mapping_targets={
        "codes": {
            "at7_status": _EVENT_TARGETS,
            "at7_status_reason": _EVENT_TARGETS,
            "at7_appointment": _EVENT_TARGETS,
            "b1_action": _EVENT_TARGETS,
            "time_code": None,  # an IANA zone or an offset like -06:00 (checked when used)
            "b2a_purpose": ["ORIGINAL", "CANCELLATION", "CHANGE", "REPLACE"],
            "stop_reason": ["PICKUP", "DELIVERY"],
            "l1_charge": ["LINEHAUL", "FUEL", "ACCESSORIAL", "DETENTION", "ADJUSTMENT", "OTHER"],
            # outbound
            "stop_kind": None,
            "purpose": None,
            "window_date_qualifier": None,
            "window_time_qualifier": None,
        },
        "fields": list(translate.DEFAULT_PATHS),
    },
)
