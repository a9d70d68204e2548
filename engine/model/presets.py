"""Named link conditions that users already know, with the figures their sources publish.

Sources give a round-trip time; the engine delays each direction, so each direction gets
half of it. Download is ingress (outer→inner), upload is egress. The realistic conditions
at the end also set a queue discipline, delivery slots, jitter or outages (`extra`, on both
directions), each with where its figures come from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.model.spec import LinkPair, LinkSpec, Spec
from engine.model.units import format_duration_ms, format_rate

#: Where the figures come from: sitespeed.io's `throttle --profile` list, WebPageTest's
#: connectivity.ini(.sample) profiles, and Chrome DevTools' network throttling presets. Each
#: name starts with its source (DevTools, sitespeed, WPT): the sources differ on what "3G" is.
SITESPEED = "sitespeed.io throttle"
WEBPAGETEST = "WebPageTest"
DEVTOOLS = "Chrome DevTools"
NETEM_SLOT = (
    "netem's slot commit (Linux 4.15, 2017): its Wi-Fi example, 200 Mbit/s, 20 ms path, slots "
    "800 us-10 ms of at most 42 packets or 64 KB, a 512-packet tail-drop queue"
)
LTE_FQ = "WebPageTest's LTE profile (12 Mbit/s, 70 ms) with FQ-CoDel at RFC 8290's defaults"
GEO = (
    "GEO orbit 35,786 km: 477 ms round trip by propagation alone, about 600 ms as measured; "
    "HughesNet Gen5's advertised 25/3 Mbit/s"
)
LEO = (
    "Starlink: about 100/10 Mbit/s and 40 ms (Ookla's 2023 reports); its scheduler "
    "re-assigns satellites every 15 s (Tanveer et al., IMC 2023), modelled as a 50 ms hold"
)
#: Lossy mobile links: a published profile's rates and round trip, with the loss a 3GPP
#: specification gives for a radio bearer, each way (both are per wireless link).
LOSSY_3G = (
    "WebPageTest's Mobile 3G (1.6 Mbit/s down, 768 kbit/s up, 300 ms) with 0.7 % loss each "
    "way: the SDU error ratio of 3GPP TS 26.114 Annex E's speech bearers (7e-3, 'in general "
    "sufficient for speech services' per wireless link)"
)
LOSSY_LTE = (
    "WebPageTest's LTE (12 Mbit/s, 70 ms) with 1 % loss each way: the packet error loss rate "
    "3GPP TS 23.203 (table 6.1.7) allows a QCI 1 conversational-voice bearer, 1e-2 (an upper "
    "bound the radio is tuned to, not a measured average)"
)

#: What a preset leaves as it is by default: a preset replaces the realism of the link.
_CLEARED = {
    "loss": 0.0, "burst_loss": None, "jitter": 0.0, "duplicate": 0.0, "corrupt": 0.0,
    "reorder": 0.0, "slot": None, "outage": None, "loss_correlation": 0.0,
    "jitter_correlation": 0.0,
}  # fmt: skip


@dataclass(frozen=True)
class Preset:
    name: str
    down_bps: int
    up_bps: int
    rtt_ms: float
    source: str
    loss: float = 0.0
    #: Further LINK fields (spec JSON, units allowed) set on both directions.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        text = (
            f"↓ {format_rate(self.down_bps)}  ↑ {format_rate(self.up_bps)}  "
            f"RTT {format_duration_ms(self.rtt_ms)}"
        )
        extras = [name for name in ("slot", "outage") if name in self.extra]
        queue = self.extra.get("queue", {})
        if "discipline" in queue:
            extras.insert(0, queue["discipline"])
        return f"{text}  + {', '.join(extras)}" if extras else text

    def links(self, base: LinkPair | None = None) -> LinkPair:
        """The preset on top of `base`: rate and latency set, jitter, loss and the other
        impairments cleared, then the preset's own `extra` (its queue replaces the base's)."""
        base = base or LinkPair()

        def one(link: LinkSpec, rate: int) -> LinkSpec:
            data = link.model_dump()
            data.update(_CLEARED)
            data.update(rate=rate, latency=self.rtt_ms / 2, loss=self.loss)
            if "queue" not in self.extra:
                data["queue"] = link.queue.model_copy(
                    update={"discipline": "tail_drop", "ecn": False, "target": None,
                            "interval": None, "flows": None, "quantum": None, "tupdate": None,
                            "max_burst": None}
                ).model_dump()  # fmt: skip
            data.update(self.extra)
            return LinkSpec.model_validate(data, strict=False)

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
    Preset("Wi-Fi with aggregation", 200_000_000, 200_000_000, 40, NETEM_SLOT,
           extra={"slot": {"min_delay": 0.8, "max_delay": 10, "packets": 42, "bytes": 65536},
                  "queue": {"packets": 512}}),
    Preset("LTE with FQ-CoDel", 12_000_000, 12_000_000, 70, LTE_FQ,
           extra={"queue": {"discipline": "fq_codel"}}),
    Preset("Lossy 3G (0.7 % loss)", 1_600_000, 768_000, 300, LOSSY_3G, loss=0.007),
    Preset("Lossy LTE (1 % loss)", 12_000_000, 12_000_000, 70, LOSSY_LTE, loss=0.01),
    Preset("GEO satellite", 25_000_000, 3_000_000, 600, GEO),
    Preset("LEO satellite (Starlink)", 100_000_000, 10_000_000, 40, LEO,
           extra={"outage": {"period": 15000, "down": 50, "mode": "hold"}}),
)  # fmt: skip
