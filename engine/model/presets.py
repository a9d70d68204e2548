"""Named link conditions that users already know, with the figures their sources publish.

Sources give a round-trip time; the engine delays each direction, so each direction gets
half of it. Download is ingress (outer→inner), upload is egress.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.model.spec import LinkPair, LinkSpec, Spec
from engine.model.units import format_duration_ms, format_rate

#: Where the figures come from: sitespeed.io's `throttle --profile` list, WebPageTest's
#: connectivity.ini(.sample) profiles, and Chrome DevTools' network throttling presets. Each
#: name starts with its source (DevTools, sitespeed, WPT): the sources differ on what "3G" is.
SITESPEED = "sitespeed.io throttle"
WEBPAGETEST = "WebPageTest"
DEVTOOLS = "Chrome DevTools"


@dataclass(frozen=True)
class Preset:
    name: str
    down_bps: int
    up_bps: int
    rtt_ms: float
    source: str
    loss: float = 0.0

    @property
    def summary(self) -> str:
        return (
            f"↓ {format_rate(self.down_bps)}  ↑ {format_rate(self.up_bps)}  "
            f"RTT {format_duration_ms(self.rtt_ms)}"
        )

    def links(self, base: LinkPair | None = None) -> LinkPair:
        """The preset on top of `base`: rate and latency set, jitter and loss cleared."""
        base = base or LinkPair()

        def one(link: LinkSpec, rate: int) -> LinkSpec:
            return link.model_copy(
                update={
                    "rate": rate,
                    "latency": self.rtt_ms / 2,
                    "loss": self.loss,
                    "burst_loss": None,
                    "jitter": 0.0,
                }
            )

        return LinkPair(
            ingress=one(base.ingress, self.down_bps), egress=one(base.egress, self.up_bps)
        )

    def in_force(self, spec: Spec) -> bool:
        """Whether `spec`'s default link is what this preset sets (whatever else it has)."""
        return spec.default_link == self.links(spec.default_link)

    def apply(self, spec: Spec) -> Spec:
        """The spec with its default link replaced by the preset; flow rules stay."""
        return spec.model_copy(update={"default_link": self.links(spec.default_link)})


PRESETS: tuple[Preset, ...] = (
    Preset("DevTools Slow 3G", 400_000, 400_000, 2000, DEVTOOLS),
    Preset("DevTools Fast 3G", 1_440_000, 675_000, 562.5, DEVTOOLS),
    Preset("sitespeed 2G", 35_000, 32_000, 650, SITESPEED),
    Preset("sitespeed 3G slow", 400_000, 400_000, 200, SITESPEED),
    Preset("sitespeed 3G", 1_600_000, 768_000, 150, SITESPEED),
    Preset("sitespeed 3G fast", 1_600_000, 768_000, 75, SITESPEED),
    Preset("sitespeed cable", 5_000_000, 1_000_000, 14, SITESPEED),
    Preset("WPT Mobile Edge", 240_000, 200_000, 840, WEBPAGETEST),
    Preset("WPT Mobile 3G", 1_600_000, 768_000, 300, WEBPAGETEST),
    Preset("WPT 4G", 9_000_000, 9_000_000, 170, WEBPAGETEST),
    Preset("WPT LTE", 12_000_000, 12_000_000, 70, WEBPAGETEST),
    Preset("WPT DSL", 1_500_000, 384_000, 50, WEBPAGETEST),
    Preset("WPT cable", 5_000_000, 1_000_000, 28, WEBPAGETEST),
    Preset("WPT FIOS", 20_000_000, 5_000_000, 4, WEBPAGETEST),
    Preset("WPT 56K dial-up", 49_000, 30_000, 120, WEBPAGETEST),
)
