"""`LINKSHAPER_REALTIME` for the container and the sidecar (issue 38, item 5): 1 adds
`--realtime` to the engine's command line, 0 or unset nothing, anything else one line naming
the variable (setup stops rather than running otherwise than asked)."""

from __future__ import annotations

import pytest

from engine.deploy.sidecar import realtime_option
from engine.deploy.takeover import SetupError


def test_the_realtime_variable_takes_1_or_0_and_names_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for text, expected in (("1", ["--realtime"]), ("0", []), ("", [])):
        monkeypatch.setenv("LINKSHAPER_REALTIME", text)
        assert realtime_option() == expected
    monkeypatch.setenv("LINKSHAPER_REALTIME", "yes")
    with pytest.raises(SetupError, match=r"^LINKSHAPER_REALTIME: 1 or 0, not 'yes'$"):
        realtime_option()
