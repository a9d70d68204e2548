"""The connection faults' controls (shaper_tui/fault_fields.py): each step makes a patch the
engine's own patcher takes, the controls show what the spec then holds (`off` for what is not
set), and every row of the table names a LinkSpec field and parts its model has. The keys,
the palette and the help, on the scripted engine."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from engine.model.faults import Blackhole
from engine.model.spec import LinkSpec, Spec
from engine.model.spec_patch import patch_spec
from shaper_tui.app import ShaperApp
from shaper_tui.fault_fields import (
    FAULT_FIELDS,
    FAULTS,
    HOLD,
    LIMIT_BYTES,
    OFF,
    TOXICITY,
    WITHIN_BYTES,
    WITHIN_S,
    Fault,
    fault_patch,
    part_field,
    part_value,
)  # fmt: skip
from shaper_tui.key_help import help_markdown
from shaper_tui.link_edits import changes_for, shown_value
from shaper_tui.scales import FAULT_AFTER, FAULT_BYTES, FAULT_SHARE
from shaper_tui.screens.help import prose_markdown
from shaper_tui.widgets.value_slider import ValueSlider
from tests.scripted_engine import ScriptedEngine
from tests.unit.test_tui_undo import ingress, run, until


def steps(start: LinkSpec, *moves: tuple[str, float | str]) -> LinkSpec:
    """The ingress link after each control's move, as the engine's patcher applies them."""
    spec = Spec.model_validate({"ingress": start.model_dump(mode="json")})
    for field, value in moves:
        spec = patch_spec(spec, changes_for("ingress", field, value, spec.link("ingress")))
        shown = shown_value(spec.link("ingress"), field)
        if isinstance(value, str) or value >= 0 or spec.link("ingress").blackhole is None:
            assert shown == value, (field, value, shown)
    return spec.link("ingress")


def test_the_switch_and_the_parts_set_the_blackhole() -> None:
    off = LinkSpec()
    assert {shown_value(off, f) for f in FAULT_FIELDS} == {"off", OFF}
    on = steps(off, ("blackhole", "on"))
    assert on.blackhole == Blackhole(after_s=10.0)
    assert shown_value(on, "blackhole_after_s") == 10_000  # shown in ms, as a duration
    assert shown_value(on, "blackhole_toxicity") == 1.0
    link = steps(on, ("blackhole_after_bytes", 100_000.0), ("blackhole_toxicity", 0.5),
                 ("blackhole_after_s", OFF))  # fmt: skip
    assert link.blackhole == Blackhole(after_bytes=100_000, toxicity=0.5)
    assert steps(link, ("blackhole_after_bytes", OFF)).blackhole is None  # no trigger left
    assert steps(link, ("blackhole_toxicity", OFF)).blackhole is None
    assert steps(link, ("blackhole", "off")).blackhole is None
    assert steps(link, ("blackhole", "on")).blackhole == link.blackhole  # kept as it is


def test_a_part_set_while_off_switches_the_fault_on_with_it_alone() -> None:
    assert steps(LinkSpec(), ("blackhole_after_bytes", 0.0)).blackhole == Blackhole(after_bytes=0)
    assert steps(LinkSpec(), ("blackhole_after_s", 2000.0)).blackhole == Blackhole(after_s=2)
    shared = steps(LinkSpec(), ("blackhole_toxicity", 0.25)).blackhole
    assert shared == Blackhole(after_s=10.0, toxicity=0.25)  # with the switch's trigger
    assert changes_for("egress", "blackhole_after_s", OFF, LinkSpec()) == {"egress.blackhole": None}


def test_the_rows_ready_for_the_other_faults_make_whole_models() -> None:
    """The shapes of limit_data, slow_close and stall (on other branches): a part the model
    needs goes with the fault; a part set while off brings the ones it needs."""
    stall = Fault("stall", "Stall", (HOLD, WITHIN_BYTES, WITHIN_S, TOXICITY), {"delay_ms": 500})
    at = "egress.stall"
    assert fault_patch(at, stall, WITHIN_S, 3000.0, None) == {at: {"delay_ms": 500, "within_s": 3}}
    held = {"delay_ms": 500, "within_s": 3.0, "toxicity": 1.0}
    assert fault_patch(at, stall, WITHIN_S, OFF, held) == {f"{at}.within_s": None}
    assert fault_patch(at, stall, HOLD, OFF, held) == {at: None}
    assert fault_patch(at, stall, HOLD, 250.0, held) == {f"{at}.delay_ms": 250.0}
    assert part_value(held, WITHIN_S) == 3000 and part_value(held, WITHIN_BYTES) == OFF
    limit = Fault("limit_data", "Limit data", (LIMIT_BYTES, TOXICITY), {"after_bytes": 10**6})
    on = {"after_bytes": 10**6, "toxicity": 0.5}
    assert fault_patch("i.limit_data", limit, TOXICITY, 0.5, None) == {"i.limit_data": on}
    assert fault_patch("i.limit_data", limit, LIMIT_BYTES, OFF, on) == {"i.limit_data": None}
    assert part_value(None, None) == "off" and part_value(on, None) == "on"


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_every_row_of_the_table_is_a_field_of_the_link(fault: Any) -> None:
    """A row added for a new fault is checked against the engine's model."""
    assert fault.name in LinkSpec.model_fields and len(fault.label) <= 10
    link = Spec.model_validate({"egress": {fault.name: fault.on}}).link("egress")
    model = getattr(link, fault.name)
    for part in fault.parts:
        assert part.name in type(model).model_fields, part
        assert part_field(fault, part) in FAULT_FIELDS


def test_the_scales_read_and_say_off_and_units() -> None:
    assert FAULT_BYTES.read("off") == OFF and FAULT_BYTES.format(OFF) == "off"
    assert FAULT_BYTES.read("1.5MB") == 1_500_000 and FAULT_BYTES.format(1_500_000) == "1.5 MB"
    assert FAULT_BYTES.read("64KiB") == 65_536 and FAULT_BYTES.read("5", shown=OFF) == 5000
    assert FAULT_AFTER.read("2s") == 2000 and FAULT_AFTER.format(2000) == "2 s"
    assert FAULT_SHARE.read("50", shown=OFF) == 0.5
    assert FAULT_BYTES.step(OFF, 1) == 100_000 and FAULT_AFTER.step(OFF, 1) == 10_000
    assert FAULT_BYTES.step(0.0, -1) == OFF
    with pytest.raises(ValueError, match="no byte count"):
        FAULT_BYTES.read("5 furlongs")


def test_the_keys_switch_the_blackhole_and_the_palette_and_help_name_it() -> None:
    async def scenario(app: ShaperApp, engine: ScriptedEngine, pilot: Pilot[Any],
                       said: list[str]) -> None:  # fmt: skip
        await pilot.press("a")
        bytes_slider = app.query_one("#ingress-blackhole_after_bytes", ValueSlider)
        bytes_slider.focus()
        await pilot.press("right")  # from off: 100 kB, the fault on with that trigger
        await until(pilot, lambda: ingress(engine).blackhole == Blackhole(after_bytes=100_000),
                    "switched on")  # fmt: skip
        assert app.query_one("#ingress-blackhole").value == "on"  # type: ignore[attr-defined]
        assert bytes_slider.text == "100 kB"
        await pilot.press("home")  # the lowest step: off, and the fault with it
        await until(pilot, lambda: ingress(engine).blackhole is None, "switched off")
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert "Set Download blackhole after bytes" in commands
        assert "Set Upload blackhole toxicity" in commands
        text = help_markdown(app.help_sections(), "blackhole")
        assert "connection faults (blackhole, reset, limit data, slow close, stall)" in text, text
        assert "**Blackhole**" in prose_markdown("blackhole")

    run(scenario)
