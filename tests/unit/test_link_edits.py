"""What a control change becomes as a spec patch, applied with the engine's own patcher."""

from __future__ import annotations

import pytest

from engine.model.spec import LinkSpec, QueueLimit, Spec
from engine.model.spec_patch import patch_spec
from shaper_tui.link_edits import Field, changes_for, mean_loss, shown_value


def edit(spec: Spec, field: str, value: float | str, direction: str = "egress") -> Spec:
    link = spec.link(direction)  # type: ignore[arg-type]
    return patch_spec(spec, changes_for(direction, field, value, link))  # type: ignore[arg-type]


def test_plain_fields_land_on_the_default_link_of_one_direction() -> None:
    spec = edit(Spec(), "rate", 2e6)
    spec = edit(spec, "latency", 150.0)
    spec = edit(spec, "jitter_distribution", "pareto")
    spec = edit(spec, "queue", 50.0)
    assert spec.default_link.egress.rate == 2_000_000
    assert spec.default_link.egress.latency == 150
    assert spec.default_link.egress.jitter_distribution == "pareto"
    assert spec.default_link.egress.queue.packets == 50
    assert spec.default_link.ingress == LinkSpec()


@pytest.mark.parametrize("loss", [0.0, 0.001, 0.05, 0.5, 0.9])
def test_bursty_loss_keeps_the_mean_the_user_set(loss: float) -> None:
    spec = edit(Spec(), "loss", loss)
    spec = edit(spec, "loss_model", "bursty")
    link = spec.default_link.egress
    assert link.burst_loss is not None and link.loss == 0
    assert mean_loss(link) == pytest.approx(loss, abs=1e-9)
    assert shown_value(link, "loss_model") == "bursty"
    # A new loss value in bursty mode stays bursty; going back to random keeps the mean.
    spec = edit(spec, "loss", 0.02)
    assert mean_loss(spec.default_link.egress) == pytest.approx(0.02)
    spec = edit(spec, "loss_model", "random")
    assert spec.default_link.egress.burst_loss is None
    assert spec.default_link.egress.loss == pytest.approx(0.02)


def test_bursts_last_four_packets_on_average_when_they_can() -> None:
    link = edit(edit(Spec(), "loss_model", "bursty"), "loss", 0.01).default_link.egress
    assert link.burst_loss is not None
    assert 1 / link.burst_loss.p_exit == pytest.approx(4)


def test_shown_values_match_the_link() -> None:
    link = LinkSpec(rate=5_000_000, loss=0.01, latency=20, queue=QueueLimit(packets=10))
    assert shown_value(link, "rate") == 5e6
    assert shown_value(link, "loss") == 0.01
    assert shown_value(link, "latency") == 20
    assert shown_value(link, "queue") == 10
    assert shown_value(link, "loss_model") == "random"


def test_advanced_controls_make_valid_patches() -> None:
    spec = Spec()
    link = spec.link("egress")
    steps: list[tuple[Field, float | str]] = [
        ("discipline", "pie"), ("ecn", "on"), ("slot", 10.0), ("slot", 0.0), ("outage", "hold"),
        ("outage_for", 200.0), ("outage_every", 1000.0), ("duplicate", 0.01), ("corrupt", 0.02),
        ("reorder", 0.05), ("discipline", "head_drop"), ("outage", "off"),
    ]  # fmt: skip
    for field, value in steps:
        spec = patch_spec(spec, changes_for("egress", field, value, link))
        link = spec.link("egress")
        if field not in ("outage_for", "outage_every"):
            assert shown_value(link, field) == value, field
    assert link.queue.discipline == "head_drop" and link.queue.ecn is False
    assert link.outage is None and link.slot is None
    assert (link.duplicate, link.corrupt, link.reorder) == (0.01, 0.02, 0.05)


def test_outage_controls_start_from_half_a_second_every_five() -> None:
    link = LinkSpec()
    spec = patch_spec(Spec(), changes_for("ingress", "outage_for", 100.0, link))
    outage = spec.link("ingress").outage
    assert outage is not None and (outage.period, outage.down) == (5000, 100)
    spec = patch_spec(Spec(), changes_for("ingress", "outage_every", 600.0, link))
    outage = spec.link("ingress").outage
    assert outage is not None and (outage.period, outage.down) == (600, 300)
    randomly = Spec.model_validate({"ingress": {"outage": {"mean_up": 900, "mean_down": 100}}})
    changed = patch_spec(randomly, changes_for("ingress", "outage_every", 2000.0,
                                               randomly.link("ingress")))  # fmt: skip
    assert shown_value(changed.link("ingress"), "outage_every") == 2000
