"""Toasts never cover an open prompt's frame (issue 35, s23 item 5: at 80x24 the `Recording
to …` toast sat over the replay file prompt). While a prompt is open its toasts are held,
those on screen when it opened included, and shown when it closes, each for its whole time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import App, ScreenStackError
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen


@dataclass(frozen=True)
class HeldToast:
    """One toast as it was asked for."""

    message: str
    title: str
    severity: SeverityLevel
    timeout: float | None
    markup: bool


class HoldsToasts:
    """A modal prompt: while it is the top screen, the app holds its toasts (`toast_held`)."""

    def on_mount(self) -> None:
        app = self.app  # type: ignore[attr-defined]
        held = held_by(app)
        if held is None:
            return
        for shown in app._notifications:  # those already on screen come back after it too
            held.append(HeldToast(shown.message, shown.title, shown.severity, shown.timeout,
                                  shown.markup))  # fmt: skip
        app.clear_notifications()

    def on_unmount(self) -> None:
        app = self.app  # type: ignore[attr-defined]
        app.call_later(release_toasts, app)


def toast_held(app: App[Any], toast: HeldToast, held: list[HeldToast]) -> bool:
    """Hold `toast` if a prompt is the top screen (True), else let it be shown now."""
    try:
        screen = app.screen
    except ScreenStackError:  # no screen yet: shown as Textual would
        return False
    if isinstance(screen, HoldsToasts) and isinstance(screen, ModalScreen):
        held.append(toast)
        return True
    return False


def release_toasts(app: App[Any]) -> None:
    """The toasts held, shown once no prompt is open (a prompt under it keeps holding them)."""
    held = held_by(app)
    if held is None or isinstance(app.screen, HoldsToasts):
        return
    toasts, held[:] = list(held), []
    for toast in toasts:
        app.notify(toast.message, title=toast.title, severity=toast.severity,
                   timeout=toast.timeout, markup=toast.markup)  # fmt: skip


def held_by(app: App[Any]) -> list[HeldToast] | None:
    """The app's held toasts; None for an app that holds none (a test's host of one screen)."""
    held: list[HeldToast] | None = getattr(app, "held_toasts", None)
    return held
