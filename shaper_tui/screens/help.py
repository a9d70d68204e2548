"""What every key does (from the bindings, see `key_help`) and what the screen shows."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from shaper_tui.key_help import KeyHelp, help_markdown

HELP = """\
# linkshaper

Two panels shape the two directions of the link: **Download** is ingress (outer → inner),
**Upload** is egress (inner → outer). Every change goes to the engine at once; what you see
is what the engine has in force, whoever changed it.

## Keys

{keys}

## Controls

- **Rate**: bits per second on the wire (Ethernet framing counted); `blocked` at 0 drops
  everything, `unlimited` is pass-through.
- **Loss**: the share of packets dropped; **Loss mode** `bursty` drops in bursts of 4
  packets on average (Gilbert-Elliott) with the same mean.
- **Latency**: a fixed delay each way. **Jitter** adds up to that much on top, shaped by
  **Jitter as** (uniform, normal, pareto) and scaled by **Strength**.
- **Queue**: packets that may wait for the rate limiter; more are dropped (Q-full).

## Figures

In and Out are bits per second before and after shaping; Lost
is random loss and blocked drops, as a share of what came in and per second; Q-full counts
queue overflows per second, beside the packets queued now; Delay is what the engine measured
frames to spend in the links (queue, latency, jitter, and its own lateness), median / 99th
percentile over the last second, to check against the Latency set. Figures are drawn twice a
second; packets a second are in each panel's lower border. The table lists flow rules and
the busiest far ends.

Each graph has a fixed scale, whose top follows its name: In and Out are drawn against the
rate in force (that number in the accent colour; what goes over it in the warning colour),
or against their recent maximum when the rate is unlimited; Delay against at least the
latency and jitter set; drops against their recent maximum. Scales that follow the data move
in 1, 2, 5 steps.

`v` lists the latest packets with what the links did to them; `g` charts the last minutes;
`c` captures every packet's fate to a pcapng file that Wireshark opens.
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

    def __init__(self, keys: list[KeyHelp]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP.replace("{keys}", help_markdown(self.keys)))

    def action_close(self) -> None:
        self.dismiss(None)
