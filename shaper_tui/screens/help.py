"""What every key does, screen by screen (from the bindings, see `key_help`), and what the
screen shows; searchable: `/`, then words, keeps the lines that hold them all."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Static

from shaper_tui.help_text import help_text
from shaper_tui.key_help import HelpSection, help_markdown, matches
from shaper_tui.widgets.key_footer import KeyFooter
from shaper_tui.widgets.ordered_input import OrderedInput

HELP = """\
# linkshaper

Two panels shape the two directions of the link: **Download** is ingress (outer → inner),
**Upload** is egress (inner → outer). Every change goes to the engine at once; what you see
is what the engine has in force, whoever changed it.

## Controls

- **Rate**: bits per second on the wire (Ethernet framing counted); `blocked` at 0 drops
  everything, `unlimited` is pass-through.
- **Loss**: the share of packets dropped; **Loss mode** `bursty` drops in bursts of 4
  packets on average (Gilbert-Elliott) with the same mean.
- **Latency**: a fixed delay each way. **Jitter** adds up to that much on top, shaped by
  **Jitter as** (uniform, normal, pareto) and scaled by **Strength**.
- **Queue**: packets that may wait for the rate limiter; more are dropped (Q-drops).
- **Queue as** (with `a`, as the rest below): the queue's discipline, tail_drop, head_drop,
  codel, fq_codel or pie; **ECN** marks instead of dropping where the discipline can.
- **Duplicate**, **Corrupt**, **Reorder**: the share of packets sent twice, with a flipped
  bit, or sent ahead of those delayed (netem's).
- **Slots**: frames leave in bursts, one every that long (as Wi-Fi aggregates them).
- **Outage**: off, blocked (dropped) or hold (kept, then sent): **Out for** that long every
  **Out every**; switched on, it starts as 500 ms every 5 s.
- **Seed**: on, every random decision about a packet follows from the seed and the packet
  (the same fates on every run).
- **Blackhole** (a connection fault): on, each connection (TCP or UDP) is dropped silently
  once it has carried **bytes** or lived **after** (whichever comes first; `off` is not
  set), for the **toxicity** share of connections; switched on, it strikes after 10 s. The
  drops are counted in the stats as `blackholed`.
- **Reset**: the same triggers, but for TCP: the packet that finds the connection past them
  is dropped and both ends get a RST (the applications see a reset); counted as `reset`.
- **Limit data**: a TCP connection is closed (FIN, then RST) once it has carried **bytes**
  of data one way.
- **Slow close**: a TCP FIN is held **hold** before it goes on; marked `held`.
- **Stall**: once per connection, at a point drawn **in bytes** or **in time**, its packets
  are held **hold**, then go on in order (a handover); marked `held`.

## Figures

In and Out are bits per second before and after shaping; Lost is the impairments' drops per
second and as a share: random loss of what got through the queue to the impairments (where the
Loss set applies, so the figure to hold against it), a block, an outage or a connection fault
of what came in, since the settings last changed (up to 10 s); Q-drops counts the queue's drops
(overflows and AQM) per second, beside the packets queued now; Delay is what the engine
measured frames to spend in the links (queue, latency, jitter, and its own lateness), median /
99th percentile over the last 2 s of reports since the settings changed, to check against the
Latency set. Q limit is the queue's limits as the engine applies them; RTT set is both
directions' latencies, RTT measured both directions' median delays. Figures are drawn twice a
second; packets a second are in each panel's lower border; the axis under the graphs says how
many seconds ago each column was drawn. The table lists flow rules and the busiest far ends.

Each graph has a fixed scale, whose top follows its name: In and Out are drawn against the
rate in force (that number in the accent colour; what goes over it in the warning colour),
or against their recent maximum when the rate is unlimited; Delay against at least the
latency and jitter set; drops against their recent maximum. Scales that follow the data move
in 1, 2, 5 steps.

`v` lists the latest packets with what the links did to them; `g` charts the last minutes;
`c` captures every packet's fate to a pcapng file that Wireshark opens.
"""


def prose_markdown(search: str) -> str:
    """The prose, whole, or with `search` only its paragraphs and items that hold every word."""
    words = search.lower().split()
    if not words:
        return HELP
    parts: list[str] = []
    for paragraph in HELP.split("\n\n"):
        if paragraph.startswith("- "):  # a list: each item on its own
            parts.extend(f"- {item}" for item in paragraph[2:].split("\n- "))
        elif not paragraph.startswith("#"):
            parts.append(paragraph)
    return "\n\n".join(part for part in parts if matches(part, words))


#: Seconds of no typing before the search filters the help.
TYPING_PAUSE = 0.1


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > Vertical {
        width: 96;
        max-width: 100%;
        height: 1fr;
        border: thick $accent;
        background: $surface;
    }
    HelpScreen Input, HelpScreen Input:focus {
        border: none;
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    HelpScreen #help-body {
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close",
                tooltip="Close the help"),
        Binding("slash", "search", "Search", key_display="/", id="help.search",
                tooltip="Search the help: it keeps the lines that hold every word typed"),
    ]  # fmt: skip

    def __init__(self, sections: list[HelpSection], start: str = "") -> None:
        """`start`: the title of the section shown first (the screen's own that `?` came
        from: the packets view's keys, not the main screen's)."""
        super().__init__()
        self.sections = sections
        self.start = start
        self.search = OrderedInput(
            placeholder="/ search: a key or a word (Esc closes)", id="search"
        )
        self.text = Static(help_text(self._markdown("")), id="help-body")
        self._typing: Timer | None = None

    def _markdown(self, search: str) -> str:
        keys = help_markdown(self.sections, search)
        prose = prose_markdown(search)
        if search and not keys and not prose:
            return f"Nothing in the help holds {search!r}."
        return f"{keys}\n{prose}" if search else f"## Keys\n\n{keys}\n{prose}"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield self.search
            with VerticalScroll(id="help-text"):
                yield self.text
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#help-text").focus()
        if self.start:
            self.call_after_refresh(self._to_start)

    def _to_start(self) -> None:
        lines = self.text.render_lines(self.text.region.reset_offset)
        for row, strip in enumerate(lines):
            if strip.text.strip().startswith(self.start):
                self.query_one("#help-text").scroll_to(y=row, animate=False)
                return

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filtered once typing pauses for TYPING_PAUSE (a burst of letters filters once)."""
        event.stop()
        if self._typing is not None:
            self._typing.stop()
        self._typing = self.set_timer(TYPING_PAUSE, self.show_search)

    def show_search(self) -> None:
        self._typing = None
        self.text.update(help_text(self._markdown(self.search.value)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#help-text").focus()

    def action_search(self) -> None:
        self.search.focus()

    def action_close(self) -> None:
        self.dismiss(None)
