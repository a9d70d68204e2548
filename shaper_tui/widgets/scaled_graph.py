"""A bar graph of recent samples on a scale the caller fixes (0 to `ceiling`), in braille: two
samples a cell across, four steps a row up, as many rows as the widget is tall.

Textual's Sparkline scales to its data's own minimum and maximum, so 2 Mbit/s looks as full as
20 and a steady rate sits on the floor after a spike; here the same value is always the same
height, and samples above the ceiling are drawn full in the `--over` style.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from itertools import islice
from typing import ClassVar, Self

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

#: Braille dot bits of each column of a cell, from the bottom dot up.
_LEFT = (0x40, 0x04, 0x02, 0x01)
_RIGHT = (0x80, 0x20, 0x10, 0x08)
_BLANK = 0x2800
#: Drawn under cells whose samples are all zero, so an idle graph still shows its floor.
_FLOOR = chr(_BLANK | _LEFT[0] | _RIGHT[0])
#: What a graph shows: its rows of braille, and each cell's kind (see `ScaledGraph._picture`).
Picture = tuple[tuple[str, ...], tuple[int, ...]]


def dots(fill: int, column: tuple[int, int, int, int]) -> int:
    """The bits of one column with its lowest `fill` dots (0..4) set."""
    bits = 0
    for bit in column[:fill]:
        bits |= bit
    return bits


def levels(value: float, ceiling: float, steps: int) -> int:
    """How many of `steps` dots a value fills: at least one for any value above zero."""
    if value <= 0 or not math.isfinite(value):
        return 0
    return max(1, min(steps, round(value / ceiling * steps)))


def braille_rows(
    samples: Sequence[float],
    ceiling: float,
    width: int,
    height: int,
    line: Sequence[float] = (),
) -> list[str]:
    """The graph as `height` strings of `width` cells, newest samples on the right; `line`
    (one value a sample, aligned on the newest) marks its level in each column: a dot above
    the bar, a gap within it, so a value set shows over the values measured."""
    steps = 4 * height
    wanted = samples[-2 * width :] if width > 0 else []
    padded = [0.0] * (2 * width - len(wanted)) + list(wanted)
    filled = [levels(v, ceiling, steps) for v in padded]
    marks = list(line[-2 * width :]) if width > 0 else []
    marked = [0] * (2 * width - len(marks)) + [levels(v, ceiling, steps) for v in marks]
    columns = [
        _column(filled[2 * cell], filled[2 * cell + 1], marked[2 * cell], marked[2 * cell + 1],
                height)
        for cell in range(width)
    ]  # fmt: skip
    return ["".join(row) for row in zip(*columns, strict=True)] if width > 0 else [""] * height


@lru_cache(maxsize=4096)
def _column(left: int, right: int, mark_left: int, mark_right: int, height: int) -> tuple[str, ...]:
    """One cell's characters, top row first, for its two samples' and marks' levels: a graph
    repeats few columns (zeros, full ones), so each is worked out once, not at every frame."""
    chars = []
    for row in range(height):
        base = 4 * (height - 1 - row)  # dots below this row
        if row == height - 1 and left == right == 0 and max(mark_left, mark_right) <= base:
            chars.append(_FLOOR)
            continue
        bits = dots(min(4, max(0, left - base)), _LEFT)
        bits |= dots(min(4, max(0, right - base)), _RIGHT)
        for level, column in ((mark_left, _LEFT), (mark_right, _RIGHT)):
            if base < level <= base + 4:  # a dot above the bar, a gap within it
                bits ^= column[level - base - 1]
        chars.append(chr(_BLANK | bits))
    return tuple(chars)


class ScaledGraph(Widget):
    DEFAULT_CSS = """
    ScaledGraph {
        height: 1;
        width: 1fr;
        color: $accent;
    }
    ScaledGraph > .scaled-graph--floor {
        color: $text-muted;
    }
    ScaledGraph > .scaled-graph--over {
        color: $warning;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"scaled-graph--floor", "scaled-graph--over"}

    #: The value drawn at the top; samples above it are drawn full, in the `--over` style.
    ceiling: reactive[float] = reactive(1.0)

    def __init__(self, samples: Sequence[float], *, id: str | None = None) -> None:
        """`samples` is read at each render (by reference: the caller appends to it)."""
        super().__init__(id=id)
        self.samples = samples
        #: A value set, drawn as one dot a column over the samples (see `braille_rows`).
        self.line: Sequence[float] = ()
        self._cached_styles: tuple[Style, Style] | None = None
        self._strips: list[Strip] | None = None
        #: The picture last drawn, and one worked out by `redraw` for the next frame.
        self._drawn: Picture | None = None
        self._next: Picture | None = None

    def validate_ceiling(self, value: float) -> float:
        return value if value > 0 and math.isfinite(value) else 1.0

    def _graph_styles(self) -> tuple[Style, Style]:
        """The floor's and the over-ceiling style, looked up once (CSS lookups are dear)."""
        if self._cached_styles is None:
            self._cached_styles = (
                self.get_component_rich_style("scaled-graph--floor", partial=True),
                self.get_component_rich_style("scaled-graph--over", partial=True),
            )
        return self._cached_styles

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cached_styles = None  # a theme changed
        self._strips = None

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        self._strips = None  # drawn again from the samples at the next frame
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def redraw(self) -> None:
        """Repaint if the picture changed since it was drawn: a graph at zero (or flat at any
        level) looks the same after a new sample, and its rows are not drawn and composed
        again (at 200x60 they were most of the TUI's steady cost)."""
        width, height = self.size.width, max(1, self.size.height)
        picture = self._picture(width, height)
        if picture != self._drawn:
            self._next = picture
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """One row, as segments: a braille graph many rows tall at 200x60 cost most of the
        TUI's steady CPU when drawn as a Rich Text (converted, searched for control codes and
        divided again at each frame)."""
        width, height = self.size.width, max(1, self.size.height)
        if self._strips is None or len(self._strips) != height:
            self._strips = self._draw(width, height)
        return self._strips[y] if 0 <= y < height else Strip.blank(width, self.rich_style)

    def _picture(self, width: int, height: int) -> Picture:
        """The rows of braille and each cell's kind (0 plain, 1 floor, 2 over the ceiling)."""
        # The newest samples only: the history kept is longer than most graphs are wide.
        samples = list(islice(reversed(self.samples), 2 * width))[::-1] if width > 0 else []
        ceiling = self.ceiling
        rows = braille_rows(samples, ceiling, width, height, self.line)
        padded = [0.0] * (2 * width - len(samples)) + samples
        kinds = tuple(
            2 if (a > ceiling or b > ceiling) else 1 if not (a or b) else 0
            for a, b in zip(padded[0::2], padded[1::2], strict=True)
        )
        return tuple(rows), kinds

    def _draw(self, width: int, height: int) -> list[Strip]:
        picture = self._next
        if picture is None or len(picture[0]) != height or len(picture[1]) != width:
            picture = self._picture(width, height)
        self._next, self._drawn = None, picture
        rows, kinds = picture
        floor, over = self._graph_styles()
        base = self.rich_style
        styles = (base, base + floor, base + over)
        # Styles go on in runs of cells (one segment a run): 1 floor (bottom row), 2 over.
        runs: list[tuple[int, int, int]] = []
        start = 0
        for cell in range(1, width + 1):
            if cell == width or kinds[cell] != kinds[start]:
                runs.append((start, cell, kinds[start]))
                start = cell
        strips = []
        for index, row in enumerate(rows):
            bottom = index == height - 1
            segments: list[Segment] = []
            begin, shown = 0, -1
            for start, _, kind in runs:  # neighbouring runs drawn alike make one segment
                style = kind if kind == 2 or bottom else 0
                if style != shown and start > begin:
                    segments.append(Segment(row[begin:start], styles[shown]))
                    begin = start
                shown = style
            segments.append(Segment(row[begin:width], styles[shown]))
            strips.append(Strip(segments, width))
        return strips


def nice_ceiling(value: float, least: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is at least `value` (and at least `least`): a
    scale that moves in few, readable steps."""
    value = max(value, least)
    if not math.isfinite(value) or value <= 0:
        return least
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power
