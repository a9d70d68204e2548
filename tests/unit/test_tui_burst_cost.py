"""What a burst of keys costs the TUI (issue 35: back to steady within 1 s after 120 keys).
Textual restyled a control (its CSS and its component classes) on every focus change: 240
restyles for 120 `j`/`k` presses, most of the CPU the burst cost. Now a control is restyled
once a frame however often focus came and went (widgets/lazy_focus.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from textual import events
from textual._compositor import LayoutUpdate
from textual.dom import DOMNode
from textual.message import Message
from textual.message_pump import MessagePump
from textual.strip import Strip
from textual.widget import Widget

from engine.model.spec import Direction
from shaper_tui.messages import StatsArrived
from shaper_tui.widgets.direction_panel import DirectionPanel
from shaper_tui.widgets.scaled_graph import ScaledGraph
from tests.scripted_engine import _sample
from tests.tui_helpers import wait_until
from tests.unit.test_tui_keys import burst
from tests.unit.test_tui_snapshots import app_and_ready

KEYS = 120
#: Restyles the burst may cost: a few frames' worth (before: two a key, 240).
ALLOWED_RESTYLES = 20


def test_a_burst_of_moves_restyles_once_a_frame() -> None:
    app, ready = app_and_ready()
    restyles = 0
    focused = ""

    async def scenario() -> None:
        nonlocal restyles, focused
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)
            await pilot.pause(0.3)
            update_styles = app.update_styles

            def counted(node: DOMNode, animate: bool = True) -> Any:
                nonlocal restyles
                restyles += 1
                return update_styles(node, animate=animate)

            app.update_styles = counted  # type: ignore[method-assign]
            for i in range(KEYS):  # all queued at once, as a burst reaches the app
                key = "j" if i % 2 == 0 else "k"
                app.post_message(events.Key(key, key))
            await pilot.pause(1.0)
            app.update_styles = update_styles  # type: ignore[method-assign]
            focused = str(app.focused.id if app.focused else None)

    asyncio.run(scenario())
    assert focused == "ingress-rate", f"{KEYS} moves, back and forth, left focus on {focused}"
    assert restyles <= ALLOWED_RESTYLES, f"{restyles} restyles for {KEYS} focus moves"


#: Reports after the script's 40 a direction: ten seconds' worth at ten a second, the figures
#: drawn twice a second (DISPLAY_INTERVAL).
REPORTS = 100


def test_steady_reports_repaint_only_what_changed() -> None:
    """At 200x60 each report drawn repainted every line of its panel (the packet rate in the
    border repainted the whole panel, controls and graphs under it) and every graph, also
    those flat at zero: 17 % of a core steady, where 10 % is the target. Now the border row
    alone, and the graphs whose picture changed (the upload loses nothing here: its Lost
    graph stays as it is)."""
    app, ready = app_and_ready()
    lines: Counter[str] = Counter()

    def counted(original: Callable[[Any, int], Strip]) -> Callable[[Any, int], Strip]:
        def render_line(widget: Widget, y: int) -> Strip:
            parent = widget.parent
            name = f"graph {parent.id}" if isinstance(widget, ScaledGraph) and parent else widget.id
            lines[name or type(widget).__name__] += 1
            return original(widget, y)

        return render_line

    async def scenario() -> None:
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)
            await pilot.pause(0.3)
            patched: dict[type[Widget], Callable[[Any, int], Strip]]
            patched = {cls: cls.render_line for cls in (Widget, ScaledGraph)}
            for cls, original in patched.items():
                cls.render_line = counted(original)  # type: ignore[method-assign,assignment]
            try:
                for i in range(40, 40 + REPORTS):  # each drawn in a frame of its own
                    for stats in (_sample(i, 18e6, 3, "ingress"), _sample(i, 5e6, 0, "egress")):
                        app.post_message(StatsArrived(stats))
                    await pilot.pause(0.01)
                await pilot.pause(0.3)
            finally:
                for cls, original in patched.items():
                    cls.render_line = original  # type: ignore[method-assign,assignment]

    asyncio.run(scenario())
    panels = lines["panel-ingress"] + lines["panel-egress"]
    assert panels == 0, f"the panels' own lines were repainted {panels} times: {lines}"
    assert lines["graph egress-lost"] == 0, f"a graph flat at zero was repainted: {lines}"
    assert lines["graph egress-out"] > 0, f"the upload's throughput was not drawn: {lines}"


def test_both_directions_are_drawn_in_one_frame() -> None:
    """Each direction's workers report on their own clock: each direction drawn when its own
    report was due made two frames where one does (four a second, the screen composed
    four times). Now a direction that is due draws the other too when it has a report not
    yet drawn. Here the upload's reports come 50 ms after the download's."""
    app, ready = app_and_ready()
    drawn: list[tuple[int, str]] = []  # (which report drew it, direction)

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(pilot)
            show = app.figures.show

            def counted(direction: Direction, panels: dict[Direction, DirectionPanel]) -> None:
                drawn.append((app.stats_seen, direction))
                show(direction, panels)

            app.figures.show = counted  # type: ignore[method-assign]
            for i in range(40, 80):
                for stats, late in ((_sample(i, 18e6, 3, "ingress"), 0.0),
                                    (_sample(i, 5e6, 0, "egress"), 0.05)):  # fmt: skip
                    app.post_message(StatsArrived(stats.model_copy(update={"at": stats.at + late})))
            await wait_until(pilot, lambda: app.stats_seen >= 160, 10, "the reports")
            await pilot.pause(0.1)

    asyncio.run(scenario())
    events = {report for report, _ in drawn}
    directions = Counter(direction for _, direction in drawn)
    assert min(directions.values()) >= 7, f"4 s of reports drew {directions}"  # 8 at 2 a second
    assert len(events) <= max(directions.values()) + 1, (
        f"{len(drawn)} panel draws in {len(events)} frames: {sorted(drawn)}"
    )


def test_focus_moves_repaint_the_controls_not_the_screen() -> None:
    """Textual's `Screen.focused` repainted the whole screen at each focus move: each frame
    drawn during a burst of `j`/`k` at 200x60 was a full repaint, graphs and all
    (textual_fixes). Now a frame repaints the controls whose focus changed."""
    app, ready = app_and_ready()
    full = 0
    focused = ""

    async def scenario() -> None:
        nonlocal full, focused
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)
            await pilot.pause(0.3)
            compositor = app.screen._compositor
            render_full_update = compositor.render_full_update

            def counted(simplify: bool = False) -> LayoutUpdate:
                nonlocal full
                full += 1
                return render_full_update(simplify=simplify)

            compositor.render_full_update = counted  # type: ignore[method-assign]
            for i in range(40):  # a frame drawn between each
                key = "j" if i % 2 == 0 else "k"
                app.post_message(events.Key(key, key))
                await pilot.pause(0.02)
            await pilot.pause(0.3)
            compositor.render_full_update = render_full_update  # type: ignore[method-assign]
            focused = str(app.focused.id if app.focused else None)

    asyncio.run(scenario())
    assert focused == "ingress-rate", f"40 moves, back and forth, left focus on {focused}"
    assert full == 0, f"{full} full repaints of the screen for 40 focus moves"


def test_a_burst_of_moves_walks_the_screen_for_its_focus_chain_once() -> None:
    """Textual walked the whole main screen (hundreds of widgets) and sorted it for the focus
    chain at each `j`/`k`: ~0.9 ms of a move's ~1.1 ms. The chain is now kept until the
    screen's DOM changes (shaper_tui/focus_chain.py); after `a` (advanced settings shown) it
    is built afresh and reaches the new controls."""
    app, ready = app_and_ready()
    walked = 0
    one_walk = 0
    focused = ""
    advanced = ""  # where `k` from the upload's first control went, the settings shown

    def counted(original: Callable[[Widget], bool]) -> Callable[[Widget], bool]:
        def allow_focus_children(widget: Widget) -> bool:
            nonlocal walked
            walked += 1
            return original(widget)

        return allow_focus_children

    async def scenario() -> None:
        nonlocal walked, one_walk, focused, advanced
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)
            await pilot.pause(0.3)
            original = Widget.allow_focus_children
            Widget.allow_focus_children = counted(original)  # type: ignore[method-assign,assignment]
            try:
                app.screen._nodes.updated()  # as a mount would: the next chain is a walk
                walked = 0
                assert app.screen.focus_chain
                one_walk, walked = walked, 0
                burst(app, *(("j", "k") * (KEYS // 2)))
                await wait_until(pilot, lambda: not app.keys_waiting, 15, "the burst let in")
                await pilot.pause(0.3)
            finally:
                Widget.allow_focus_children = original  # type: ignore[method-assign]
            focused = str(app.focused.id if app.focused else None)
            await pilot.press("a")  # the advanced settings shown (and laid out)
            await pilot.pause(0.3)
            burst(app, "w", "k")  # from the upload's first control back to the last above it
            await wait_until(pilot, lambda: not app.keys_waiting, 15, "w k let in")
            await pilot.pause(0.3)
            parent = app.focused.parent if app.focused else None
            advanced = f"{app.focused!r} in {parent!r}"
            assert parent is not None and parent.has_class("advanced"), advanced

    asyncio.run(scenario())
    assert focused == "ingress-rate", f"{KEYS} moves, back and forth, left focus on {focused}"
    assert one_walk > 0, "Textual's focus chain no longer asks containers: count otherwise"
    assert walked <= 2 * one_walk, f"{walked / one_walk:.0f} walks of the screen for {KEYS} moves"


#: Messages the TUI may handle for a burst of KEYS moves and `w j l`: each posted key is read
#: once by the app, and a few go further (before: ~4,400, some 36 a key).
ALLOWED_MESSAGES = 6 * KEYS


def test_a_burst_of_moves_is_one_focus_move() -> None:
    """Let in one by one, each of 120 `j`/`k` went its whole way: the key bubbling up from the
    control, a marker behind it, the blur and the focus bubbling through the panels, ~36
    messages and ~4.5 ms of CPU a key. A run of held moves is now one net move, the focus set
    once (shaper_tui/focus_moves.py); the `w j l` behind it still act each on the focus its
    turn finds: the upload's loss is stepped, nothing else."""
    app, ready = app_and_ready()
    handled: Counter[str] = Counter()
    stepped: list[str] = []

    async def scenario() -> None:
        async with app.run_test(size=(200, 60)) as pilot:
            await ready(pilot)
            await pilot.pause(0.3)
            before = app.spec.default_link
            dispatch = MessagePump._dispatch_message

            async def counted(pump: MessagePump, message: Message) -> None:
                handled[type(message).__name__] += 1
                await dispatch(pump, message)

            MessagePump._dispatch_message = counted  # type: ignore[method-assign,assignment]
            try:
                burst(app, *(("j", "k") * (KEYS // 2)), "w", "j", "l")
                # (not a wait for `keys_waiting` first: on a busy machine the whole burst
                # can be let in before this polls)
                await wait_until(
                    pilot,
                    lambda: not app.keys_waiting and app.spec.default_link != before,
                    20,
                    "the burst let in and its step",
                )
            finally:
                MessagePump._dispatch_message = dispatch  # type: ignore[method-assign]
            after = app.spec.default_link
            stepped.extend(
                f"{d}.{name}"
                for d in ("ingress", "egress")
                for name, value in getattr(after, d)
                if getattr(getattr(before, d), name) != value
            )
            stepped.append(str(app.focused.id if app.focused else None))

    asyncio.run(scenario())
    assert stepped == ["egress.loss", "egress-loss"], f"changed, then focused: {stepped}"
    assert handled["Focus"] <= 4, f"{handled['Focus']} focus changes for {KEYS} moves, `w j l`"
    total = sum(handled.values())
    assert total <= ALLOWED_MESSAGES, f"{total} messages for {KEYS + 3} keys: {handled}"
