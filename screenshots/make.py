"""Regenerate the PNGs in screenshots/: the real app on the demo lab with live traffic.

    make screenshots        (as root: it builds the demo lab, and removes it again)

Textual saves SVG; cairosvg turns it into PNG.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import cairosvg

from engine.lab import Lab
from engine.lab_demo import DemoLab
from shaper_tui.app import create_app
from shaper_tui.engine_source import SocketSource

HERE = Path(__file__).resolve().parent
SIZE = (110, 34)
WARM_UP = 8.0  # seconds of traffic before the first shot, so the sparklines have history


def save(app_svg: str, name: str) -> None:
    svg = HERE / f"{name}.svg"
    svg.write_text(app_svg)
    cairosvg.svg2png(url=str(svg), write_to=str(HERE / f"{name}.png"), output_width=1600)
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


def main() -> int:
    with DemoLab(Lab("lsshot"), seconds=60) as demo:
        asyncio.run(shoot(demo.control))
    return 0


if __name__ == "__main__":
    sys.exit(main())
