"""Regenerate screenshots/: PNGs of the real app on the demo lab with live traffic, and the
`linkshaper plot` chart of a recorded lab run (plot.txt) that the README shows.

    make screenshots        (as root: it builds labs, and removes them again)

Textual saves SVG; headless Chromium turns it into PNG with a monospace font, so the braille
graphs and the columns line up as in a terminal (cairosvg, the fallback where there is no
Chromium, draws with whatever font it finds).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cairosvg

from engine.lab.demo import DemoLab
from engine.lab.lab import SERVER_IP, Lab
from engine.model.spec import Spec
from engine.protocol.client import ControlClient, wait_for_engine
from engine.timelines.plot import plot_timeline
from engine.timelines.reading import read_timeline
from shaper_tui.app import create_app
from shaper_tui.engine_source import SocketSource

HERE = Path(__file__).resolve().parent
SIZE = (110, 34)
WARM_UP = 8.0  # seconds of traffic before the first shot, so the sparklines have history


#: Pixels wide of each PNG.
WIDTH = 1600


def to_png(svg: Path, png: Path) -> None:
    """The SVG drawn by Chromium at WIDTH pixels (cairosvg where there is no Chromium)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    box = re.search(r'viewBox="0 0 ([0-9.]+) ([0-9.]+)"', svg.read_text())
    if chromium is None or box is None:
        cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=WIDTH)
        return
    width, height = float(box.group(1)), float(box.group(2))
    scale = WIDTH / width
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--force-device-scale-factor={scale:.4f}", f"--screenshot={png}",
         f"--window-size={int(width)},{int(height)}", svg.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def save(app_svg: str, name: str) -> None:
    svg = HERE / f"{name}.svg"
    svg.write_text(app_svg)
    to_png(svg, HERE / f"{name}.png")
    svg.unlink()
    print(f"screenshots/{name}.png")


async def shoot(control: str) -> None:
    app = create_app(SocketSource(control))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(WARM_UP)
        save(app.export_screenshot(title="linkshaper"), "main")
        await pilot.press("p")
        await pilot.pause(0.5)
        save(app.export_screenshot(title="linkshaper: presets"), "presets")
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.5)
        save(app.export_screenshot(title="linkshaper: help"), "help")


#: The recorded run: UDP both ways (so that throughput is the capacity), and three changes.
PLOT_SPEC = Spec.model_validate(
    {
        "ingress": {"rate": "8mbit", "latency": "20ms"},
        "egress": {"rate": "4mbit", "latency": "20ms"},
    }
)
PLOT_CHANGES = (
    (6.0, {"ingress.rate": "3mbit", "ingress.latency": "80ms"}),
    (12.0, {"egress.loss": "5%"}),
    (18.0, {"ingress.rate": "12mbit", "egress.rate": "2mbit"}),
)


def record_and_plot() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        recording = Path(workdir) / "run.jsonl"
        spec_path = Path(workdir) / "spec.json"
        spec_path.write_text(PLOT_SPEC.to_json())
        control = str(Path(workdir) / "control.sock")
        lab = Lab("lsplot")
        lab.up()
        processes: list[subprocess.Popen[bytes]] = []
        try:
            command = lab.engine_command(
                str(spec_path), control, "--record", str(recording), "--record-stats"
            )
            engine = subprocess.Popen(command, stderr=subprocess.DEVNULL)
            processes.append(engine)
            wait_for_engine(control)
            for port in ("5201", "5202"):
                processes.append(
                    subprocess.Popen(lab.in_ns("server", "iperf3", "-s", "-p", port),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                )  # fmt: skip
            time.sleep(0.3)
            for port, extra in (("5201", ["-R", "-b", "10M"]), ("5202", ["-b", "6M"])):
                processes.append(
                    subprocess.Popen(
                        lab.in_ns("client", "iperf3", "-c", SERVER_IP, "-p", port, "-t", "24",
                                  "-u", *extra),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                )  # fmt: skip
            started = time.monotonic()
            with ControlClient(control) as client:
                for at, change in PLOT_CHANGES:
                    time.sleep(max(0.0, started + at - time.monotonic()))
                    client.patch(change, source="set")
            for process in processes[-2:]:
                process.wait(40)
        finally:
            for process in reversed(processes):
                if process.poll() is None:
                    process.terminate()
                    process.wait(5)
            lab.down()
        plot_timeline(read_timeline(recording), str(HERE / "plot.txt"), 100, 48, show=False)
        print("screenshots/plot.txt")


def main() -> int:
    with DemoLab(Lab("lsshot"), seconds=60) as demo:
        asyncio.run(shoot(demo.control))
    record_and_plot()
    return 0


if __name__ == "__main__":
    sys.exit(main())
