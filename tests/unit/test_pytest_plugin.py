"""The `shaped_link` fixture without the lab: it skips saying why without root, and its
parameter names a preset, a spec or nothing. The lab ones are in
tests/lab/test_pytest_plugin.py."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from engine.lab.harness import is_root
from engine.testing.pytest_plugin import spec_of
from tests.lab.test_pytest_plugin import users_pytest


def test_without_root_the_fixture_skips_saying_why(tmp_path: Path) -> None:
    if not is_root() or shutil.which("setpriv") is None:
        pytest.skip("needs root to become another user (setpriv)")
    nobody = ("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")
    # pytest's own tmp_path is inside a directory only root may enter.
    with tempfile.TemporaryDirectory() as shared:
        result = users_pytest(Path(shared), *nobody)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 skipped" in result.stdout
    assert "shaped_link needs root" in result.stdout


def test_a_parameter_names_a_preset_a_spec_or_nothing() -> None:
    lte = spec_of("WPT LTE")
    assert lte.default_link.egress.latency == 35.0
    assert spec_of({"egress": {"latency": "5ms"}}).default_link.egress.latency == 5.0
    assert spec_of(None).default_link.egress.latency == 0.0
    with pytest.raises(pytest.UsageError, match=r"no preset named 'LTE'.*'WPT LTE'"):
        spec_of("LTE")
