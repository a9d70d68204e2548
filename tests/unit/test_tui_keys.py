"""Keys typed in one burst all act, in order, and cheaply (issue 35, item 10): `w k k k` left
focus on the other panel (`w` focused a turn later, after the `k`s); `Ctrl+U 75ms` in a prompt
lost the text (the field's Ctrl+U ran after the keys typed behind it); and every focus move
rebuilt the footer, so 120 moves held a core for seconds.

The keys are posted to the app as the terminal driver posts them, all at once, not one at a
time with a wait in between as `pilot.press` does: that wait hid both losses."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, OptionList
from textual.widgets._footer import FooterKey

from shaper_tui.app import ShaperApp
from tests.tui_helpers import wait_until
from tests.unit.test_tui_snapshots import app_and_ready

CHARACTERS = {"ctrl+u": "\x15", "enter": "\r"}


def burst(app: ShaperApp, *keys: str) -> None:
    """The keys as one read from the terminal gives them: queued before any is handled."""
    for key in keys:
        app.post_message(events.Key(key, CHARACTERS.get(key, key)))


async def settled(app: ShaperApp, pilot: Pilot[Any]) -> None:
    await pilot.pause(0.3)
    await app.workers.wait_for_complete()
    await pilot.pause()


def focus_chain_ids(app: ShaperApp) -> list[str]:
    return [widget.id or "" for widget in app.screen.focus_chain]


def test_keys_right_after_w_move_on_from_the_other_panel() -> None:
    app, ready = app_and_ready()

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            assert app.focused is not None and app.focused.id == "ingress-rate"
            burst(app, "w", "k", "k", "k")
            await settled(app, pilot)
            chain = focus_chain_ids(app)
            expected = chain[chain.index("egress-rate") - 3]
            assert app.focused is not None and app.focused.id == expected

    asyncio.run(scenario())


def test_text_typed_right_after_ctrl_u_in_a_prompt_is_kept() -> None:
    app, ready = app_and_ready()

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            app.set_focus(app.query_one("#ingress-latency"))
            await pilot.press("enter")
            field = app.screen.query_one(Input)
            burst(app, "1", "2", "ctrl+u", "7", "5", "m", "s")
            await settled(app, pilot)
            assert field.value == "75ms"
            burst(app, "enter")
            await wait_until(pilot, lambda: app.spec.link("ingress").latency == 75, 5,
                             "the latency typed after Ctrl+U")  # fmt: skip

    asyncio.run(scenario())


def test_a_burst_of_120_moves_lands_where_it_should_and_keeps_the_footer() -> None:
    """Each of 120 `j`s moves one control on; the footer's keys, the same for every slider,
    are the same widgets afterwards (before, each move unmounted and mounted all of them)."""
    app, ready = app_and_ready()

    async def scenario() -> None:
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)
            app.set_focus(app.query_one("#ingress-rate"))
            await settled(app, pilot)
            footer_keys: list[Widget] = list(app.screen.query(FooterKey))
            assert footer_keys
            chain = focus_chain_ids(app)
            burst(app, *["j"] * 120)
            await settled(app, pilot)
            expected = chain[(chain.index("ingress-rate") + 120) % len(chain)]
            assert app.focused is not None and app.focused.id == expected
            app.set_focus(app.query_one("#ingress-rate"))
            await settled(app, pilot)
            assert list(app.screen.query(FooterKey)) == footer_keys

    asyncio.run(scenario())


def test_up_and_down_move_in_the_presets_list_while_the_filter_has_focus() -> None:
    """The filter field's ScrollView keys swallowed ↓: the list never moved."""
    app, ready = app_and_ready()

    async def scenario() -> list[int | None]:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await pilot.press("p")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "PresetsScreen", 5)
            listing = app.screen.query_one(OptionList)
            seen = [listing.highlighted]
            for key in ("down", "down", "up"):
                await pilot.press(key)
                seen.append(listing.highlighted)
            return seen

    assert asyncio.run(scenario()) == [0, 1, 2, 1]


def test_b_says_unblock_while_the_link_is_blocked() -> None:
    """The footer said `b Block` while blocked (and `b` then unblocked)."""
    app, ready = app_and_ready()

    async def scenario() -> tuple[str, str, int]:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            await pilot.press("b")
            await wait_until(pilot, lambda: app.spec.default_link.egress.rate == 0, 5, "block")
            await wait_until(pilot, lambda: "Unblock" in footer_text(app), 5, "b Unblock")
            blocked = footer_text(app)
            await pilot.press("b")
            await wait_until(pilot, lambda: app.spec.default_link.egress.rate > 0, 5, "unblock")
            await wait_until(pilot, lambda: "Unblock" not in footer_text(app), 5, "b Block")
            return blocked, footer_text(app), app.spec.default_link.egress.rate

    blocked, unblocked, rate = asyncio.run(scenario())
    assert "b Unblock" in blocked and "b Block" in unblocked and rate > 0


def footer_text(app: ShaperApp) -> str:
    return " ".join(f"{key.key_display} {key.description}" for key in app.query(FooterKey))
