"""Every key of the app: the footer, the help screen and the command palette are made from these
(see `key_help`), so a key is added here once."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from shaper_tui.fault_fields import FAULTS

#: The bindings that move between controls (listed first in the help).
MOVES = ("app.next", "app.previous", "app.other_panel")

#: What `b` does, blocked or not.
BLOCK_HELP = "Block the link both ways, or unblock it: the rates before the block come back"

#: Every action's key, name and sentence: the footer, the help screen and the command
#: palette are all made from these (see `key_help`).

BINDINGS: list[BindingType] = [
    Binding("down,j,tab", "app.focus_next", "Next control", show=False, id="app.next",
            key_display="↓ / j / Tab", tooltip="Move to the next control"),
    Binding("up,k,shift+tab", "app.focus_previous", "Previous control", show=False,
            id="app.previous",
            key_display="↑ / k / Shift+Tab", tooltip="Move to the previous control"),
    Binding("w", "other_panel", "Other panel", show=False, id="app.other_panel",
            tooltip="The same control in the other direction's panel"),
    Binding("p", "presets", "Presets", id="app.presets",
            tooltip="Presets (3G, 4G, DSL, cable, ...), each with its source"),
    Binding("b", "block", "Block", id="app.block",
            tooltip=BLOCK_HELP),
    # The same sentence: the help tells each key once (it said the rates come back twice).
    Binding("b", "unblock", "Unblock", id="app.unblock", tooltip=BLOCK_HELP),
    Binding("R", "reset", "Reset", id="app.reset", key_display="R",
            tooltip="Reset to pass-through (no limit, no loss, no delay), after asking"),
    Binding("u,ctrl+z", "undo", "Undo", id="app.undo",
            tooltip="Undo the last change (a step, a typed value, a choice, a preset, block, "
            "reset or replay): the fields it changed go back, a field changed since by "
            "another client stays; a burst on one control is one step"),
    Binding("U,ctrl+y", "redo", "Redo", show=False, id="app.redo", key_display="U",
            tooltip="Redo what u undid (Shift+U or Ctrl+Y)"),
    Binding("a", "advanced", "Advanced", show=False, id="app.advanced",
            tooltip="Show or hide each direction's rarer settings: queue discipline and "
                    "ECN, duplication, corruption, reordering, slots, outages, the seed, "
                    f"connection faults ({', '.join(f.label.lower() for f in FAULTS)})"),
    Binding("f", "flush", "Flush", show=False, id="app.flush",
            tooltip="Flush: drop every packet the links hold, queued or delayed (after a "
            "latency set by mistake, say: a lower latency applies to packets that arrive "
            "afterwards); it cannot be undone: the packets are gone"),
    Binding("r", "record", "Record", id="app.record",
            tooltip="Start recording every change (and stats) to `linkshaper-DATE.jsonl`"),
    Binding("r", "stop_recording", "■ Stop", id="app.stop_recording",
            tooltip="Stop recording and save the file"),
    Binding("c", "capture", "Capture", show=False, id="app.capture",
            tooltip="Capture what the links do to each frame to `linkshaper-DATE.pcapng` "
            "(Wireshark opens it; `linkshaper fates FILE` sums it up)"),
    Binding("c", "stop_capture", "■ Stop capture", show=False, id="app.stop_capture",
            tooltip="Stop the capture and close its file"),
    Binding("t", "timeline", "Replay", id="app.timeline",
            tooltip="Replay a timeline file (the last recording is offered)"),
    Binding("t", "pause_replay", "Pause", id="app.pause_replay",
            tooltip="Pause the replay in progress"),
    Binding("t", "resume_replay", "Resume", id="app.resume_replay",
            tooltip="Resume the paused replay"),
    Binding("x", "stop_replay", "Stop", id="app.stop_replay",
            tooltip="Stop the replay in progress"),
    Binding("o", "toggle_loop", "Loop", show=False, id="app.toggle_loop",
            tooltip="Replay in a loop, or once: the replay in progress and those `t` starts"),
    Binding("v", "packets", "Packets", show=False, id="app.packets",
            tooltip="View the latest packets the links dropped or delayed, with their fate "
            "(a capture runs while it is open)"),
    Binding("g", "history", "History", show=False, id="app.history",
            tooltip="Chart the last ten minutes: rates set and measured, latency, queue "
            "delay, drops by cause, each change marked"),
    Binding("question_mark", "help", "Help", key_display="?", id="app.help",
            tooltip="This help: keys and what the figures mean"),
    Binding("q", "quit", "Quit", id="app.quit",
            tooltip="Quit; an engine you attached to keeps running"),
]  # fmt: skip
