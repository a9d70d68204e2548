"""Rates from cumulative counters, and presets as published."""

from __future__ import annotations

import pytest

from engine.model.presets import PRESETS
from engine.model.rates import LinkRates, direction_rates, flow_rates
from engine.model.spec import Spec
from engine.model.stats import DirectionStats, Drops, LinkStats


def sample(at: float, bytes_out: int, loss: int = 0, pid: int = 1) -> DirectionStats:
    link = LinkStats(
        bytes_in=bytes_out * 2, bytes_out=bytes_out, packets_out=bytes_out // 1000,
        drops=Drops(loss=loss, queue_full=loss * 2), queue_packets=3, queue_delay_ms=1.5,
    )  # fmt: skip
    return DirectionStats(direction="ingress", at=at, pid=pid, total=link, flows={"web": link})


def test_rates_are_differences_over_the_span() -> None:
    rates = direction_rates(sample(10.0, 1000, 1), sample(10.5, 126_000, 11))
    assert rates.bits_out == pytest.approx(125_000 * 8 / 0.5)
    assert rates.bits_in == pytest.approx(2 * rates.bits_out)
    assert rates.loss_drops == pytest.approx(20) and rates.queue_drops == pytest.approx(40)
    assert rates.queue_packets == 3 and rates.queue_delay_ms == 1.5
    assert flow_rates(sample(10.0, 1000), sample(10.5, 126_000))["web"].bits_out == rates.bits_out


def test_no_previous_sample_or_a_restarted_worker_gives_zero_not_nonsense() -> None:
    assert direction_rates(None, sample(1.0, 5000)).bits_out == 0
    restarted = direction_rates(sample(1.0, 10**9, pid=1), sample(2.0, 10, pid=2))
    assert restarted.bits_out == 0
    assert LinkRates.between(LinkStats(bytes_out=50), LinkStats(bytes_out=10), 1.0).bits_out == 0


def test_presets_split_the_round_trip_and_keep_flows() -> None:
    spec = Spec.model_validate(
        {"flows": [{"label": "web", "flow": {"ip": 0}, "link": {"ingress": {}, "egress": {}}}]}
    )
    cable = next(p for p in PRESETS if p.name == "sitespeed cable")
    applied = cable.apply(spec)
    assert applied.default_link.ingress.rate == 5_000_000
    assert applied.default_link.egress.rate == 1_000_000
    assert applied.default_link.ingress.latency == applied.default_link.egress.latency == 7
    assert [f.label for f in applied.flows] == ["web"]


def test_every_preset_names_its_source_and_is_a_valid_link() -> None:
    for preset in PRESETS:
        assert preset.source
        assert preset.apply(Spec()).default_link.ingress.rate == preset.down_bps


def test_preset_names_are_unambiguous_and_the_one_in_force_is_known() -> None:
    names = [p.name.lower() for p in PRESETS]
    assert len(set(names)) == len(names)
    for preset in PRESETS:
        applied = preset.apply(Spec())
        assert [p.name for p in PRESETS if p.in_force(applied)] == [preset.name]
        assert not preset.in_force(Spec())


def test_lossy_mobile_links_with_their_3gpp_sources() -> None:
    """Issue 35, item 16: no preset was a lossy mobile link."""
    lossy = {p.name: p for p in PRESETS if p.loss > 0}
    assert set(lossy) == {"Lossy 3G (0.7 % loss)", "Lossy LTE (1 % loss)"}
    three_g, lte = lossy["Lossy 3G (0.7 % loss)"], lossy["Lossy LTE (1 % loss)"]
    assert "TS 26.114" in three_g.source and "TS 23.203" in lte.source
    link = lte.apply(Spec()).default_link
    assert link.ingress.loss == link.egress.loss == 0.01
    assert link.ingress.latency == link.egress.latency == 35
    assert three_g.apply(Spec()).default_link.egress.rate == 768_000
