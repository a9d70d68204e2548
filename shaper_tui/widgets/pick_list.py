"""An option list whose Enter the footer names: the list takes Enter before its screen does, and
OptionList's own binding for it is hidden, so a picker's footer said only `esc Cancel`."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import OptionList


class PickList(OptionList):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Pick", key_display="⏎",
                tooltip="Pick the option highlighted (↑/↓ move)"),
    ]  # fmt: skip
