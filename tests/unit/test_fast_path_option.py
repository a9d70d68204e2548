"""`--no-fast-path` and `LINKSHAPER_FAST_PATH` (issue 38, item 1): the option reaches every
worker's config; in the container and the sidecar 0 adds `--no-fast-path` to the engine's
command line, 1 or unset nothing, anything else one line naming the variable."""

from __future__ import annotations

import pytest

from engine.cli.main import build_parser
from engine.daemon.config import EngineConfig
from engine.deploy.sidecar import fast_path_option
from engine.deploy.takeover import SetupError


def test_the_fast_path_variable_takes_1_or_0_and_names_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for text, expected in (("0", ["--no-fast-path"]), ("1", []), ("", [])):
        monkeypatch.setenv("LINKSHAPER_FAST_PATH", text)
        assert fast_path_option() == expected
    monkeypatch.setenv("LINKSHAPER_FAST_PATH", "off")
    with pytest.raises(SetupError, match=r"^LINKSHAPER_FAST_PATH: 1 or 0, not 'off'$"):
        fast_path_option()


def test_no_fast_path_reaches_both_workers() -> None:
    args = build_parser().parse_args(["run", "outer", "inner", "--no-fast-path"])
    assert args.no_fast_path
    assert not build_parser().parse_args(["run", "outer", "inner"]).no_fast_path
    config = EngineConfig("outer", "inner", fast_path=False)
    assert not config.worker("ingress").fast_path and not config.worker("egress").fast_path
    assert EngineConfig("outer", "inner").worker("egress").fast_path
