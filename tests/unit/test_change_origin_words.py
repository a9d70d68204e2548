"""A `Changed by …` toast says what changed: the fields in words, at most three named."""

from __future__ import annotations

from shaper_tui.change_origin import what_changed


def test_fields_are_named_by_direction_and_field() -> None:
    paths = ["default_link.ingress.latency", "default_link.egress.burst_loss.p"]
    assert what_changed(paths) == "Upload burst loss p, Download latency"


def test_flow_rules_are_one_name_and_more_than_three_are_counted() -> None:
    paths = ["flows", *(f"default_link.ingress.{f}" for f in ("loss", "rate", "jitter", "gap"))]
    assert what_changed(paths) == "Download gap, Download jitter, Download loss and 2 more"
    assert what_changed(["flows"]) == "flow rules"
    assert what_changed([]) == ""
