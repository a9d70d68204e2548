"""Every check of `linkshaper doctor`, in the order it prints them, with `required` set by
the rule of `report.needed`."""

from __future__ import annotations

from engine.doctor.engine_checks import control_checks, http_checks
from engine.doctor.host import (
    capability_checks,
    interface_checks,
    kernel_checks,
    packet_checks,
    tool_check,
)
from engine.doctor.report import Check, needed


def diagnose(
    purpose: str,
    interfaces: list[str],
    control: str,
    control_given: bool,
    http: str | None = None,
    token: str | None = None,
    rerun: str = "linkshaper doctor",
) -> list[Check]:
    """Every check, `required` set by the rule of `report.needed`: what `purpose` needs, and
    what the command line named (interfaces, an explicit `--control`, `--http`). `rerun` is
    doctor's own command line, which fixes repeat (under sudo, or in another namespace)."""
    checks = [
        *packet_checks(purpose),
        *capability_checks(purpose),
        tool_check(),
        *kernel_checks(rerun),
        *interface_checks(interfaces, rerun),
        *control_checks(control, control_given, rerun),
    ]
    if http is not None:
        checks += http_checks(http, token)
    named = {f"interface.{name}" for name in interfaces}
    if control_given:
        named.add("control_socket")
    if http is not None:
        named.add("http_api")
    return needed(checks, purpose, frozenset(named))
