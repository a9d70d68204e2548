"""The TUI says when the engine itself drops (issue 38, item 2): frames its receive buffer had
no room for ("engine saturated", dropped before any link saw them) show as a line in the
direction's panel while they happen, at every size, and the line goes when they stop. The real
app, fed stats samples as its engine link posts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from engine.model.spec import Direction
from engine.model.stats import DirectionStats
from shaper_tui.app import ShaperApp
from tests.unit.test_set_beside_did import Feed, scenario, text


class SaturatedFeed(Feed):
    """Feed's samples, with `saturated` frames a second dropped unread per direction."""

    def __init__(self, app: ShaperApp) -> None:
        super().__init__(app)
        self.saturated: dict[Direction, float] = {"ingress": 0.0, "egress": 0.0}
        self.dropped: dict[Direction, float] = {"ingress": 0.0, "egress": 0.0}

    def _sample(self, direction: Direction, given: dict[str, Any]) -> DirectionStats:
        self.dropped[direction] += self.saturated[direction] / 10
        sample = super()._sample(direction, given)
        return sample.model_copy(update={"engine_saturated": int(self.dropped[direction])})


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
def test_engine_saturated_drops_show_in_the_panel_while_they_happen(
    size: tuple[int, int], tmp_path: Path
) -> None:
    async def steps(app: ShaperApp, pilot: Pilot[Any], plain: Feed) -> None:
        feed = SaturatedFeed(app)
        egress, ingress = app.panels["egress"], app.panels["ingress"]
        await feed.run(pilot, 2.0)
        assert not egress.saturated.has_class("-shown")
        feed.saturated["egress"] = 5000.0
        await feed.run(pilot, 2.0)
        assert egress.saturated.has_class("-shown")
        assert text(egress.saturated) == "Engine saturated: 5000/s dropped"
        region = egress.saturated.region
        assert region.height == 1 and app.screen.region.contains_region(region), region
        assert not ingress.saturated.has_class("-shown")  # the other way is not saturated
        for key in ("in", "out", "lost", "queue-drops", "delay"):  # every graph keeps its row
            spark = egress.sparks[key].region
            assert spark.height >= 1 and egress.region.contains_region(spark), (key, spark)
        app.save_screenshot(str(tmp_path / f"engine-saturated-{size[0]}x{size[1]}.svg"))
        feed.saturated["egress"] = 0.0
        await feed.run(pilot, 2.0)
        assert not egress.saturated.has_class("-shown")

    scenario(steps, size=size)
