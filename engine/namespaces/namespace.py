"""What a shaped namespace is: the defaults for new ones (the config), the shaping a user asks
for, and the record of one made (/run/linkshaper/ns/NAME.json), which `list`, `show` and `del`
read. See netns.py for what is made.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engine.model.errors import LinkshaperError
from engine.model.spec import UNLIMITED_RATE, Spec, SpecError
from engine.model.units import parse_rate
from engine.model.validation_errors import describe_validation_error
from engine.namespaces.commands import run_command

STATE_DIR = Path(os.environ.get("LINKSHAPER_NS_STATE", "/run/linkshaper/ns"))
CONFIG_PATH = os.environ.get("LINKSHAPER_NS_CONFIG", "/etc/linkshaper/namespaces.json")


class NamespaceError(LinkshaperError, RuntimeError):
    """One line: what could not be done and why."""


class NsConfig(BaseModel):
    """Defaults for every new namespace (the seed gave each a reasonable limit)."""

    model_config = ConfigDict(extra="forbid")

    pool: str = "198.18.64.0/18"
    rate: int = 100_000_000
    backend: str = Field(default="tc", pattern="^(tc|engine)$")
    qdisc: str = Field(default="htb", pattern="^(htb|tbf)$")
    parent: str | None = None  # a network namespace name; None: the root namespace
    forward: bool = False  # turn on IPv4 forwarding in the parent (to reach beyond it)
    nat: bool = False  # masquerade the pool behind the parent's other addresses

    @field_validator("rate", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        return parse_rate(value) if isinstance(value, str) else value

    @field_validator("pool")
    @classmethod
    def _pool(cls, value: str) -> str:
        network = ipaddress.ip_network(value, strict=True)
        if network.version != 4 or network.prefixlen > 30:
            raise ValueError("an IPv4 network of /30 or larger")
        return value


def load_config(path: str | None = None) -> NsConfig:
    path = path or CONFIG_PATH
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return NsConfig()
    except OSError as exc:
        raise NamespaceError(f"{path}: {exc.strerror}") from None
    try:
        return NsConfig.model_validate_json(text)
    except ValidationError as exc:
        raise NamespaceError(f"{path}: {describe_validation_error(exc)}") from None


@dataclass
class Shaping:
    """What the user asked for, per direction (download = ingress, upload = egress)."""

    ingress_rate: int | None = None
    egress_rate: int | None = None
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0

    @property
    def needs_netem(self) -> bool:
        return self.latency_ms > 0 or self.jitter_ms > 0 or self.loss > 0

    def spec(self) -> Spec:
        def link(rate: int | None) -> dict[str, Any]:
            return {
                "rate": rate if rate is not None else UNLIMITED_RATE,
                "latency": self.latency_ms,
                "jitter": self.jitter_ms,
                "loss": self.loss,
            }

        return Spec.model_validate(
            {"default_link": {"ingress": link(self.ingress_rate), "egress": link(self.egress_rate)}}
        )


@dataclass
class Namespace:
    name: str
    index: int
    backend: str
    parent: str | None
    parent_ip: str
    ns_ip: str
    prefix: int
    qdisc: str
    shaping: Shaping = field(default_factory=Shaping)
    engine_pid: int | None = None

    @property
    def outside(self) -> str:
        return f"lsv{self.index}"

    @property
    def inside(self) -> str:
        return f"lsp{self.index}"

    @property
    def engine_inner(self) -> str:
        return f"lsi{self.index}"

    @property
    def app_side(self) -> str:
        return f"lsa{self.index}"

    @property
    def control(self) -> str:
        return str(STATE_DIR / f"{self.name}.sock")

    @property
    def spec_path(self) -> Path:
        """The engine's spec file (written by `ns add` from the requested shaping)."""
        return STATE_DIR / f"{self.name}.spec.json"

    @property
    def state_path(self) -> Path:
        return STATE_DIR / f"{self.name}.json"

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, name: str) -> Namespace:
        path = STATE_DIR / f"{name}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise NamespaceError(f"no namespace {name!r} made by linkshaper") from None
        data["shaping"] = Shaping(**data["shaping"])
        return cls(**data)


def all_namespaces() -> list[Namespace]:
    if not STATE_DIR.exists():
        return []
    return [Namespace.load(p.stem) for p in sorted(STATE_DIR.glob("*.json")) if "." not in p.stem]


def run(
    *args: str, netns: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run_command(args, netns, check, NamespaceError)


def parse_shaping(
    rate: str | None,
    ingress_rate: str | None,
    egress_rate: str | None,
    latency: str | None,
    jitter: str | None,
    loss: str | None,
    config: NsConfig,
) -> Shaping:
    """Command-line values (with units) on top of the config's default rate."""
    from engine.model.units import UnitError, parse_duration_ms, parse_ratio

    def rate_of(text: str | None, fallback: int | None) -> int | None:
        if text is None:
            return fallback
        if text.strip().lower() in ("unlimited", "none", "0"):
            return None
        return parse_rate(text)

    try:
        both = rate_of(rate, config.rate)
        return Shaping(
            ingress_rate=rate_of(ingress_rate, both),
            egress_rate=rate_of(egress_rate, both),
            latency_ms=parse_duration_ms(latency) if latency else 0.0,
            jitter_ms=parse_duration_ms(jitter) if jitter else 0.0,
            loss=parse_ratio(loss) if loss else 0.0,
        )
    except (UnitError, SpecError) as exc:
        raise NamespaceError(str(exc)) from None
