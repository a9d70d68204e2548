"""The `shaped_link` fixture as users get it: loaded from the package's pytest11 entry point in
a pytest run of their own (the README's worked example, copied), and used here directly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.lab.harness import iperf3, is_root, received_bits_per_second
from engine.model.units import parse_rate
from engine.protocol.http_client import HttpApiError, HttpClient
from engine.testing.pytest_plugin import ShapedLink

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pytest" / "test_on_a_bad_link.py"


def users_pytest(tmp_path: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    """pytest on a copy of the worked example, in a directory of its own (none of our config)."""
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    tmp_path.chmod(0o755)
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         EXAMPLE.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


@pytest.mark.lab
def test_the_worked_example_passes_in_a_users_own_pytest(tmp_path: Path) -> None:
    if not is_root():
        pytest.skip("needs root")
    result = users_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


@pytest.mark.lab
@pytest.mark.parametrize("shaped_link", [{"ingress": {"latency": "10ms"}}], indirect=True)
def test_the_fixture_shapes_and_changes_the_link_mid_test(shaped_link: ShapedLink) -> None:
    """The spec given holds from the start; `set` changes one direction over HTTP; `run` and
    `popen` reach both sides; stats count what crossed."""
    assert min(shaped_link.ping(count=6)) >= 10.0
    shaped_link.set("ingress", rate="4mbit", latency=0)
    report = iperf3(shaped_link.lab, seconds=4, reverse=True)  # the server sends: ingress
    measured = received_bits_per_second(report)
    assert 0.80 * 4e6 <= measured <= 1.05 * 4e6, measured
    assert shaped_link.spec().default_link.ingress.rate == parse_rate("4mbit")
    ingress = shaped_link.stats().ingress
    assert ingress is not None and ingress.total.bytes_out > 4e6 * 3 / 8 * 0.8


@pytest.mark.lab
def test_the_http_client_reports_a_refusal_in_one_line_and_changes_nothing(
    shaped_link: ShapedLink,
) -> None:
    with pytest.raises(HttpApiError) as refused:
        shaped_link.set("egress", loss=7)
    assert refused.value.status == 422 and "loss" in refused.value.message
    assert "\n" not in str(refused.value)
    assert shaped_link.spec().default_link.egress.loss == 0
    with pytest.raises(HttpApiError) as nowhere:
        HttpClient("http://127.0.0.1:9", timeout=2).spec()  # the discard port: nobody there
    assert nowhere.value.status == 0
