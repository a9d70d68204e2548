"""A check's result and the rule that turns a doctor's checks into its exit code.

Each check says what it found (`ok`, `missing`, or `warn`: there but with a caveat, or not
found out) and, when it is not ok, the one command or flag that fixes it. Whether a check
counts for the exit code depends on what the command line said it is for (`--for`) and what
it named: the rule is in `needed` and in docs/cli.md ("doctor").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from engine.model.printable import printable

#: A detail or fix longer than this is cut where printed: it holds what an engine said.
LINE_LIMIT = 1000

Status = Literal["ok", "missing", "warn"]

#: What `doctor --for WHAT` checks the needs of, and the checks each one needs. `run`, the
#: default, is the engine itself; `client` is a command that talks to a running engine (get,
#: set, stats, tui), which needs none of the kernel's features but needs the engine.
PURPOSES: dict[str, frozenset[str]] = {
    "run": frozenset({"af_packet", "packet_vnet_hdr", "cap_net_raw", "cap_net_admin"}),
    "ns": frozenset(
        {
            "af_packet",
            "packet_vnet_hdr",
            "cap_net_raw",
            "cap_net_admin",
            "cap_sys_admin",
            "iproute2",
        }
    ),
    "ns-tc": frozenset({"cap_net_admin", "cap_sys_admin", "iproute2", "qdisc_htb", "qdisc_netem"}),
    "client": frozenset({"control_socket"}),
}

#: The command each purpose stands for, in fixes and in the summary.
COMMANDS = {
    "run": "linkshaper run OUTER INNER",
    "ns": "linkshaper ns add NAME",
    "ns-tc": "linkshaper ns add NAME --backend tc",
    "client": "linkshaper get",
}


@dataclass(frozen=True)
class Check:
    """One line of the doctor's answer."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    required: bool = False
    #: What the check read, for the JSON's top level (the engine's version); not a field of
    #: the check's own JSON.
    found: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "required": self.required,
            "detail": printable(self.detail, LINE_LIMIT),
            "fix": None if self.fix is None else printable(self.fix, LINE_LIMIT),
        }


def needed(checks: list[Check], purpose: str, named: frozenset[str]) -> list[Check]:
    """The checks with `required` set on those the purpose needs and those the command line
    asked for by name (an interface, `--control PATH`, `--http URL`)."""
    wanted = PURPOSES[purpose] | named
    return [replace(check, required=check.name in wanted) for check in checks]


def exit_code(checks: list[Check]) -> int:
    """1 when something needed is missing, else 0 (a warning never fails)."""
    return 1 if any(c.required and c.status == "missing" for c in checks) else 0


def missing_needs(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if c.required and c.status == "missing"]


def engine_version(checks: list[Check]) -> str | None:
    """The version the engine at the control socket said, None when none was reached."""
    found = next((c.found for c in checks if c.name == "engine_version"), None)
    return None if found is None else printable(found)


def as_json(checks: list[Check], purpose: str, version: str) -> dict[str, Any]:
    """The whole answer as one object (`doctor --json`): snake_case, as the HTTP API."""
    return {
        "version": version,
        "engine_version": engine_version(checks),
        "for": purpose,
        "ok": exit_code(checks) == 0,
        "missing": missing_needs(checks),
        "checks": [check.as_json() for check in checks],
    }


def as_text(checks: list[Check], purpose: str, version: str) -> str:
    """One line per check: its status, `needed` in a column of its own where it counts for the
    exit code (said after the detail it read as part of it), its name and detail, its fix
    indented under it; and a last line that says whether the command line's needs are met."""
    lines = [f"linkshaper doctor {version}, for `{COMMANDS[purpose]}`:"]
    width = max(len(check.name) for check in checks)
    for check in checks:
        mark = "needed" if check.required else ""
        detail = printable(check.detail, LINE_LIMIT)  # an engine's words: no escapes, no floods
        lines.append(f"{check.status:<8} {mark:<6}  {check.name:<{width}}  {detail}")
        if check.fix and not check.ok:
            lines.append(f"{'':<8} {'':<6}  {'':<{width}}  fix: {printable(check.fix, LINE_LIMIT)}")
    missing = missing_needs(checks)
    if missing:
        lines.append(f"missing for `{COMMANDS[purpose]}`: {', '.join(missing)}")
    else:
        lines.append(f"everything `{COMMANDS[purpose]}` needs is here")
    return "\n".join(lines)
