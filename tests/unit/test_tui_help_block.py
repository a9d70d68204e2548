"""New-user report 35b, item 9: the help for `b` said the same twice ("…(the rates come
back); Unblock the link: the rates before the block come back")."""

from __future__ import annotations

from textual.binding import Binding

from shaper_tui.bindings import BINDINGS
from shaper_tui.key_help import help_lines


def test_b_is_told_once_in_the_help() -> None:
    lines = help_lines(BINDINGS, lambda b: b.key)
    (line,) = [line for line in lines if line.keys == "b"]
    assert line.text.count("come back") == 1, line.text
    assert "Block" in line.text and "unblock" in line.text, line.text
    assert any(isinstance(b, Binding) and b.action == "unblock" for b in BINDINGS)
