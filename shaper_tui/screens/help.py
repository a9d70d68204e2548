"""What every key does and what the screen shows."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# linkshaper

Two panels shape the two directions of the link: **Download** is ingress (outer → inner),
**Upload** is egress (inner → outer). Every change goes to the engine at once; what you see
is what the engine has in force, whoever changed it.

## Keys

- **Tab / Shift+Tab, ↑ / ↓**: move between controls
- **← / →** (h / l): one step down / up
- **Shift+← / Shift+→** (H / L): a coarse step, a decade on rates and times
- **Enter or 1-9**: type an exact value with units: `20mbit`, `150ms`, `1.5%`
- **p**: presets (3G, 4G, DSL, cable, ...), each with its source
- **b**: block the link both ways, or unblock it (the rates come back)
- **0**: reset to pass-through: no limit, no loss, no delay
- **f**: flush: drop every packet the links hold, queued or delayed (after a latency set by
  mistake, say: a lower latency applies to packets that arrive afterwards)
- **r**: start or stop recording every change (and stats) to `linkshaper-DATE.jsonl`
- **t**: replay a timeline file; while one runs, pause or resume it · **x**: stop it
- **?**: this help · **Ctrl+P**: the command palette, every action by name
- **q**: quit; an engine you attached to keeps running

## Controls

- **Rate**: bits per second on the wire (Ethernet framing counted); `blocked` at 0 drops
  everything, `unlimited` is pass-through.
- **Loss**: the share of packets dropped; **Loss mode** `bursty` drops in bursts of 4
  packets on average (Gilbert-Elliott) with the same mean.
- **Latency**: a fixed delay each way. **Jitter** adds up to that much on top, shaped by
  **Jitter as** (uniform, normal, pareto) and scaled by **Strength**.
- **Queue**: packets that may wait for the rate limiter; more are dropped (Q-full).

## Figures

In and Out are bits per second before and after shaping; Lost counts random loss and
blocked drops per second; Q-full counts queue overflows; Q-delay is how long the packet at
the head of the queue has waited. The table lists flow rules and the busiest far ends.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 96;
        max-width: 100%;
        height: 90%;
        border: thick $accent;
        background: $surface;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close",
                tooltip="Back to the link"),
    ]  # fmt: skip

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
