"""The shaping spec: the seed system's JSON, accepted as it is, plus our additions.

Both of the seed's formats load. The old one is `{"ingress": LINK, "egress": LINK}`; the new one
adds per-flow links. Whatever came in, the engine holds and prints the new format, so a spec
read back with `linkshaper get` can be fed to the seed system as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from engine.model.errors import LinkshaperError
from engine.model.faults import Blackhole, LimitData, Reset, SlowClose, Stall
from engine.model.fields import UNLIMITED_RATE as UNLIMITED_RATE
from engine.model.fields import Millis, Overhead, Rate, Ratio, Strict
from engine.model.flow_match import FlowMatch as FlowMatch
from engine.model.impairments import BurstLoss as BurstLoss
from engine.model.impairments import MarkovLoss as MarkovLoss
from engine.model.impairments import Outage as Outage
from engine.model.impairments import QueueLimit as QueueLimit
from engine.model.impairments import Slot as Slot
from engine.model.validation_errors import describe_validation_error, quoted

#: Framing overhead counted per frame by the rate limiter, in bytes, on top of the Ethernet
#: frame that AF_PACKET shows (14-byte header onwards): preamble and start delimiter (8),
#: frame check sequence (4) and inter-frame gap (12). The seed counts the same 24 bytes.
FRAMING_OVERHEAD = 24
#: Longest path a spec may name (a trace).
MAX_TRACE_PATH = 4096
MAX_SEED = (1 << 64) - 1  # a link's `seed` is a 64-bit unsigned number


class SpecError(LinkshaperError, ValueError):
    """A spec that cannot be used; the message is one line that names the field and the reason."""


JitterDistribution = Literal["uniform", "normal", "pareto"]


class LinkSpec(Strict):
    """One direction of one link, in the seed's units: bit/s, fractions and milliseconds."""

    rate: Rate = UNLIMITED_RATE
    loss: Ratio = 0.0
    latency: Millis = 0.0
    jitter: Millis = 0.0
    jitter_strength: Ratio = 1.0
    reorder_packets: bool = False
    jitter_distribution: JitterDistribution = "uniform"
    burst_loss: BurstLoss | None = None
    queue: QueueLimit = QueueLimit()
    #: A Mahimahi packet-delivery trace (a file path): capacity follows it instead of `rate`
    #: (rate 0 still blocks). See engine/model/trace.py. Validating a spec reads no file: the
    #: file is read (and a bad one refused) where a spec is applied (`trace_files.check_traces`).
    trace: Annotated[str, Field(min_length=1, max_length=MAX_TRACE_PATH)] | None = None
    # netem's impairments, with its names and meanings. Each `*_correlation` (0..1) makes its
    # process correlated with the packet before while keeping its mean: see
    # engine/core/correlated.py for the model.
    loss_correlation: Ratio = 0.0
    jitter_correlation: Ratio = 0.0
    #: netem's four-state loss model (`loss state ...`), in addition to `loss`.
    markov_loss: MarkovLoss | None = None
    #: netem's `loss ... ecn`: a packet that loss would drop is marked CE instead, if it is
    #: ECN-capable (counted as `ecn_marked`, not as loss).
    loss_ecn: bool = False
    #: A copy of the packet follows it (and takes the queue, the rate and the loss on its own).
    duplicate: Ratio = 0.0
    duplicate_correlation: Ratio = 0.0
    #: One random bit past the Ethernet header is flipped (checksums completed first, so that
    #: the receiver's checksum catches it).
    corrupt: Ratio = 0.0
    corrupt_correlation: Ratio = 0.0
    #: netem's reordering: such a packet skips latency and jitter and overtakes those held;
    #: with `gap` N, only every Nth packet may (netem's `reorder P gap N`).
    reorder: Ratio = 0.0
    reorder_correlation: Ratio = 0.0
    gap: int = Field(default=1, ge=1, le=1_000_000)
    slot: Slot | None = None
    #: The rate limiter's accounting, as netem's `rate ... packetoverhead cellsize celloverhead`:
    #: bytes added to each packet (replacing the 24 bytes of Ethernet framing when set), then
    #: rounded up to whole cells of `cell_size` bytes that each cost `cell_overhead` more.
    overhead: Overhead | None = None
    cell_size: int | None = Field(default=None, ge=1, le=65536)
    cell_overhead: int = Field(default=0, ge=0, le=1000)
    outage: Outage | None = None
    #: Reproducible fates: every random decision about a packet (loss and its burst state,
    #: duplication, corruption and its bit, reordering, jitter) is drawn from this seed, the flow
    #: and the packet's identity, not arrival order or time (engine/core/seeded.py); None: off.
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    blackhole: Blackhole | None = None  # a connection's packets dropped after N bytes or T s
    slow_close: SlowClose | None = None  # a TCP FIN held T ms
    stall: Stall | None = None  # a connection's packets held T ms once, at a random point
    reset: Reset | None = None  # a TCP connection reset (RST to both ends) after N bytes or T s
    limit_data: LimitData | None = None  # a TCP connection closed after N bytes one way

    @field_validator("trace")
    @classmethod
    def _check_trace(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("a path has no NUL character")
        return value

    @property
    def needs_wire_packets(self) -> bool:
        """Whether each wire packet needs its own fate, so super-frames must be cut up."""
        has_jitter = self.jitter > 0 and self.jitter_strength > 0
        per_packet = self.duplicate > 0 or self.corrupt > 0 or self.reorder > 0
        lossy = self.loss > 0 or self.burst_loss is not None or self.markov_loss is not None
        return lossy or has_jitter or per_packet or self.tcp_faults

    @property
    def tcp_faults(self) -> bool:
        """Whether a TCP connection fault is set (engine/core/tcp_faults.py)."""
        return self.reset is not None or self.limit_data is not None

    @property
    def transparent(self) -> bool:
        """Whether the link forwards every packet at once and untouched, whatever the load
        (nothing held, dropped or changed). The rate limiter's own settings do not count."""
        return self.latency == 0 and self._only_latency

    @property
    def delay_only(self) -> bool:
        """Whether the link does nothing but hold every packet for `latency`: each leaves in
        the order it came, untouched, after the same delay, so frames can be held in bulk."""
        return self.latency > 0 and self._only_latency

    @property
    def _only_latency(self) -> bool:
        """Nothing but latency: no rate limit, loss, jitter, netem impairment, slot or outage."""
        return (
            self.rate >= UNLIMITED_RATE
            and self.trace is None
            and self.loss == 0
            and self.burst_loss is None
            and self.markov_loss is None
            and (self.jitter == 0 or self.jitter_strength == 0)
            and self.duplicate == self.corrupt == self.reorder == 0
            and self.slot is None
            and self.outage is None
            and self.blackhole is None
            and self.slow_close is None
            and self.stall is None
            and not self.tcp_faults
        )


class LinkPair(Strict):
    """Ingress is outer→inner (what the application downloads); egress is inner→outer."""

    ingress: LinkSpec = LinkSpec()
    egress: LinkSpec = LinkSpec()

    def of(self, direction: Direction) -> LinkSpec:
        return self.ingress if direction == "ingress" else self.egress


_LABEL = re.compile(r"^[\w_]+$")
#: Longest flow label, in characters: the one limit wherever a label is taken (a spec, the
#: `link=` of /flush and /capture, a capture request), so every flow can be named again. A
#: label is a name on a screen; 200 is far more than one needs and keeps errors one line.
MAX_LABEL_LENGTH = 200

#: Most flow rules a spec may hold, checked on the raw list before any flow is validated, so
#: every door refuses a larger one at once (110,000 took the engine minutes and a gigabyte).
MAX_FLOWS = 10_000


class FlowSpec(Strict):
    #: The schema says what `_check_label` checks (its own words for the errors).
    label: Annotated[
        str,
        Field(
            max_length=MAX_LABEL_LENGTH,
            json_schema_extra={"pattern": r"^\w+$", "not": {"const": "default"}},
        ),
    ]
    flow: FlowMatch = FlowMatch()
    link: LinkPair = LinkPair()

    @field_validator("label")
    @classmethod
    def _check_label(cls, value: str) -> str:
        if value == "default":
            raise ValueError("label 'default' is reserved")
        if not _LABEL.match(value):
            raise ValueError("a label is letters, digits and underscores only")
        return value


class Spec(Strict):
    default_link: LinkPair = LinkPair()
    flows: list[FlowSpec] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _accept_old_format(cls, data: Any) -> Any:
        is_old = (
            isinstance(data, Mapping)
            and "default_link" not in data
            and "flows" not in data
            and ("ingress" in data or "egress" in data)
        )
        if is_old:
            pair = {k: data[k] for k in ("ingress", "egress") if k in data}
            rest = {k: v for k, v in data.items() if k not in pair}
            return {"default_link": pair, **rest}
        return data

    @field_validator("flows", mode="before")
    @classmethod
    def _check_flow_count(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) > MAX_FLOWS:
            raise ValueError(f"at most {MAX_FLOWS} flow rules (got {len(value)})")
        return value

    @model_validator(mode="after")
    def _check_labels_unique(self) -> Spec:
        seen: set[str] = set()
        for flow in self.flows:
            if flow.label in seen:
                raise ValueError(f"duplicate flow label {quoted(flow.label)}")
            seen.add(flow.label)
        return self

    def link(self, direction: Direction, label: str = "default") -> LinkSpec:
        pair = self.default_link
        if label != "default":
            pair = next(f.link for f in self.flows if f.label == label)
        return pair.of(direction)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


Direction = Literal["ingress", "egress"]
DIRECTIONS: tuple[Direction, Direction] = ("ingress", "egress")


#: Longest spec file or request that is read: a spec with thousands of flows is far smaller.
MAX_SPEC_BYTES = 16 * 1024 * 1024


def parse_spec(data: Any, strict: bool = True) -> Spec:
    """A Spec from already-decoded JSON, or SpecError with a one-line reason. Strict by default
    (`"1"` is no integer, `1` no boolean, `true` no number), as the seed's reader is; every
    door's changes are read so (`patch_spec` too), so the same value means the same
    everywhere. Units in text (`"10mbit"`) are a spec's own syntax, strict or not."""
    try:
        return Spec.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(exc)) from None
    except RecursionError:
        raise SpecError("spec: nested too deeply") from None
    except Exception as exc:  # a validator's bug must be a bad spec, never a dead engine
        raise SpecError(f"spec: cannot be read ({type(exc).__name__})") from None


def loads_spec(text: str | bytes) -> Spec:
    """A Spec from JSON text, or SpecError with a one-line reason."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"spec: larger than {MAX_SPEC_BYTES // (1024 * 1024)} MiB")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text: byte {exc.start} cannot be decoded") from None
    except RecursionError:
        raise SpecError("not valid JSON: nested too deeply") from None
    return parse_spec(data)


#: A LINK's fields as the seed has them; every other field is one of linkshaper's extensions.
SEED_LINK_FIELDS = ("rate", "loss", "latency", "jitter", "jitter_strength", "reorder_packets")


def seed_view(spec: Spec) -> dict[str, Any]:
    """The spec as JSON data in the seed's shape: each LINK has the seed's six fields, and an
    extension only where it differs from its default. The seed's client rejects any field it
    does not know, and its engine reads such a file, so both take what this gives unless a
    spec sets extensions; a spec they sent comes back as sent."""
    data = spec.model_dump(mode="json")
    defaults = LinkSpec().model_dump(mode="json")

    def trim(link: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in link.items() if k in SEED_LINK_FIELDS or v != defaults[k]}

    for pair in [data["default_link"], *(flow["link"] for flow in data["flows"])]:
        for direction in DIRECTIONS:
            pair[direction] = trim(pair[direction])
    for flow, model in zip(data["flows"], spec.flows, strict=True):
        flow["flow"] = _seed_match(model.flow, flow["flow"])
    return data


def _seed_match(match: FlowMatch, data: dict[str, Any]) -> dict[str, Any]:
    """A flow's match as the seed writes it where it can: one IPv4 address as the seed's
    integer (its four bytes in network order read little-endian), a protocol by number. The
    seed's client reads a dotted address as 0, any address, and writes that back: a flow set
    by address elsewhere would silently widen to every address. A prefix stays text."""
    version, address, mask = match.address_match()
    if version == 4 and mask == 0xFFFFFFFF and isinstance(match.ip, str):
        data = {**data, "ip": int.from_bytes(address.to_bytes(4, "big"), "little")}
    if isinstance(match.protocol, str):
        data = {**data, "protocol": match.protocol_number}
    return data


def _seed_link(rate: int) -> dict[str, Any]:
    """A LINK as the seed's usage text prints it: every seed field, nothing of ours."""
    return {
        "rate": rate,
        "loss": 0.0,
        "latency": 0,
        "jitter": 0,
        "jitter_strength": 0.0,
        "reorder_packets": False,
    }


#: The seed's own example: 10 Mbit/s down, 1 Mbit/s up, HTTP on a 100 Mbit/s link.
EXAMPLE_SPEC = Spec.model_validate(
    {
        "default_link": {"ingress": _seed_link(10_000_000), "egress": _seed_link(1_000_000)},
        "flows": [
            {
                "label": "http",
                "flow": {"ip": 0, "protocol": 6, "port_min": 80, "port_max": 80},
                "link": {"ingress": _seed_link(100_000_000), "egress": _seed_link(100_000_000)},
            }
        ],
    }
)

#: Pass-through: nothing impaired, what `run` uses when no spec path is given.
PASS_THROUGH = Spec()
