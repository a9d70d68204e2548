"""Keys act one at a time, in the order they were typed, on the screen they were typed for.

Textual hands each key the terminal sends to the widget focused when the app reads it, and runs
the key's bindings only once it has bubbled back up to the app. A burst (tmux send-keys, a
paste, a fast typist) is read in one go, so every key of it went to the control focused before
the first: the digits typed right after Enter (which opens the value prompt) went to the slider
under the prompt and were lost, `p fios Enter` left the presets' filter empty, `R y` left the
question open. Making the opening key a priority binding broke the order instead (`j j Enter`
opened the first control's prompt).

So the app lets one key in at a time, for every screen and every key alike, in this one place
every key passes through (no screen or door has to do anything): the next goes out once the
one before is done. That is when a marker sent right behind it, along its way from the widget
it went to up to the app, has come back (the key's bindings ran there, a prompt they opened is
mounted); on a screen other than the main one, also a second marker behind what the handlers
on that way posted meanwhile (a field's Submitted that closes a dialog); and a screen that
opened or closed is mounted with its focus set (`focus()` takes effect a turn later). A key
that comes back to the app after a screen opened under it (a change it followed asked a
question) is held again, for that screen. The keys wait here, in order, and the screen is
drawn once they are all in. A run of focus moves among the main screen's controls does
nothing but move the focus: it is taken at once, the focus set where the run leaves it
(`focus_moves`), not key by key with a marker each.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from textual import events
from textual.app import App
from textual.dom import DOMNode
from textual.message import Message
from textual.message_pump import MessagePump
from textual.widget import Widget

from shaper_tui.focus_moves import net_move

#: How long one key's way may take at most before the next key goes anyway (its marker is
#: lost only when a widget it waits in is removed; a key's way takes milliseconds).
KEY_TIMEOUT = 2.0
#: How often a wait looks whether the widgets on the marker's way are still there.
LOOK_EVERY = 0.05
#: The most keys held at once: beyond, a burst (a stuck key, an unbracketed paste of
#: thousands of characters) is dropped, said once, instead of freezing the TUI for minutes.
MAX_HELD_KEYS = 500
#: Keys that go ahead of the held ones: quitting never waits behind a burst.
QUIT_KEYS = frozenset({"ctrl+q", "ctrl+c"})
#: `q` quits on the main screen; it goes ahead once this many keys are held (no typist's
#: burst: a `q` typed right after `t` is still the prompt's).
Q_JUMPS_AFTER = 50

TypedEvent = events.Key | events.Paste
#: Where a key went, and the marker sent behind it.
Landed = tuple[DOMNode, "asyncio.Future[None]"]


class KeyTrip(Message, bubble=True):
    """Sent behind a key along its way up: when it reaches the app, the key has been handled
    wherever it went."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        super().__init__()
        self.done = done


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _alive(pump: MessagePump) -> bool:
    return not (pump._closing or pump._closed)


def _copy(key: TypedEvent) -> TypedEvent:
    """The key afresh (the one that went out is marked as forwarded, perhaps stopped)."""
    return (
        events.Key(key.key, key.character)
        if isinstance(key, events.Key)
        else events.Paste(key.text)
    )


class KeyOrder(App[None]):
    """The app's part that holds typed keys back until the one before them is done."""

    #: The controls a run of held focus moves may pass over at once (`focus_moves`).
    MOVE_CONTROLS: ClassVar[tuple[type[Widget], ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held_keys: deque[TypedEvent] = deque()
        self._letting_in: TypedEvent | None = None
        #: The key out (and the screen on top when it went), until the next goes.
        self._key_out: tuple[TypedEvent, object] | None = None
        #: Where the key let in went and its marker (None: a priority binding took it).
        self._key_landed: asyncio.Future[Landed | None] | None = None
        self._key_feeder: asyncio.Task[None] | None = None
        #: What waits for the end of the burst (a control's focus restyle), in order.
        self._after_keys: list[Callable[[], object]] = []
        #: Keys dropped in this burst (over MAX_HELD_KEYS), said when it is in.
        self._keys_dropped = 0
        #: Focus moves taken at once (in runs) rather than let in one by one, all told.
        self.moves_at_once = 0

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, TypedEvent):
            await super().on_event(event)
        elif event.is_forwarded:
            out = self._key_out
            if out is not None and event is out[0] and out[1] is not self.screen:
                # It went out before a screen opened or closed (a change it followed opened
                # a question): it is the new screen's, once that is ready.
                event.stop()
                self._held_keys.appendleft(_copy(event))
                return
            await super().on_event(event)
        elif event is not self._letting_in:
            if self._jumps(event):
                await super().on_event(event)
                return
            if len(self._held_keys) >= MAX_HELD_KEYS:
                self._keys_dropped += 1
                return
            self._held_keys.append(event)
            if self._key_feeder is None:
                self._key_feeder = asyncio.create_task(self._feed_keys())
        else:
            self._letting_in = None
            self._key_out = (event, self.screen)
            await super().on_event(event)  # priority bindings, then to the focused widget
            landed = self._key_landed
            if landed is not None and not landed.done():
                landed.set_result(self._send_marker() if event.is_forwarded else None)

    def _jumps(self, event: TypedEvent) -> bool:
        """Whether `event` goes ahead of the held keys (a quit key behind a burst)."""
        if not isinstance(event, events.Key) or not self._held_keys:
            return False
        if event.key in QUIT_KEYS:
            return True
        main = self.screen is self.screen_stack[0]
        return event.key == "q" and main and len(self._held_keys) >= Q_JUMPS_AFTER

    def _send_marker(self) -> Landed:
        """A marker right behind the key, on its way (before its bindings add to that way)."""
        target = self.focused or self.screen
        done: asyncio.Future[None] = asyncio.Future()
        if not target.post_message(KeyTrip(done)):
            _resolve(done)
        return target, done

    @property
    def keys_waiting(self) -> bool:
        """Whether typed keys are still being let in (the footer waits for the end of a burst
        before it redraws its keys)."""
        return self._key_feeder is not None

    def call_after_keys(self, callback: Callable[[], object]) -> None:
        """`callback` once the keys being let in are all in (after the next refresh when
        none are): the app idles between two keys of a burst, so work left for after a
        refresh (a focus restyle, ~3 ms) was done after every key, 240 times for 120 moves."""
        if self._key_feeder is None:
            self.call_after_refresh(callback)
        else:
            self._after_keys.append(callback)

    def on_key_trip(self, message: KeyTrip) -> None:
        message.stop()
        _resolve(message.done)

    def on_unmount(self) -> None:
        if self._key_feeder is not None:
            self._key_feeder.cancel()

    async def _feed_keys(self) -> None:
        """Lets the held keys in one by one, each once the one before is done. The screen is
        drawn once they are all in, not after each (a redraw of the main screen takes tens of
        milliseconds: 120 moves would take seconds)."""
        self._begin_batch()
        try:
            while self._held_keys and self.is_running:
                key = self._held_keys.popleft()
                if not self._move_at_once(key):
                    await self._let_in(key)
        finally:
            self._key_feeder = None
            self._key_out = None
            waiting, self._after_keys = self._after_keys, []
            for callback in waiting:  # before the batch ends: drawn in the burst's one frame
                callback()
            self._end_batch()
            if self._keys_dropped:
                dropped, self._keys_dropped = self._keys_dropped, 0
                self.notify(f"{dropped} keys dropped: more than {MAX_HELD_KEYS} came at once",
                            severity="warning", timeout=5)  # fmt: skip

    def _move_at_once(self, key: TypedEvent) -> bool:
        """Whether `key` was a focus move, taken with the moves right behind it as one (the
        focus set once, where they leave it: `focus_moves`)."""
        moved = net_move(self, key, self._held_keys, self.MOVE_CONTROLS)
        if moved is None:
            return False
        target, keys = moved
        self.moves_at_once += keys
        self.screen.set_focus(target)
        return True

    async def _let_in(self, key: TypedEvent) -> None:
        """`key` in, and back once it is done: on the main screen, once its way is (the
        screen's redraw after a move is not waited for: 120 moves stay quick); on another
        screen (a field, a list), also what its handlers posted on that way (a field's
        Submitted closes the dialog); and a screen it opened or closed ready."""
        before = self.screen
        landed: asyncio.Future[Landed | None] = asyncio.Future()
        self._key_landed, self._letting_in = landed, key
        self.post_message(key)
        sent = await self._wait(landed, [self])
        if sent is not None:
            target, done = sent
            await self._wait(done, [target, *target.ancestors])
            if self.screen is before and before is not self.screen_stack[0]:
                await self._trip(target)
        if self.screen is not before or not self.screen._mounted_event.is_set():
            await self._screen_ready()

    async def _wait(self, done: asyncio.Future[Any], way: list[MessagePump]) -> Any:
        """`done`'s result, or None once KEY_TIMEOUT passed or a pump on `way` went away."""
        deadline = time.monotonic() + KEY_TIMEOUT
        while time.monotonic() < deadline and all(_alive(pump) for pump in way):
            try:
                return await asyncio.wait_for(asyncio.shield(done), LOOK_EVERY)
            except TimeoutError:
                continue
        return None

    async def _trip(self, start: DOMNode) -> None:
        """A marker from `start` up to the app: everything queued on that way before it is
        handled when it arrives."""
        done: asyncio.Future[None] = asyncio.Future()
        if start.post_message(KeyTrip(done)):
            await self._wait(done, [start, *start.ancestors])

    async def _screen_ready(self) -> None:
        """The screen on top mounted (one pushed without waiting for it is not yet), and what
        its mounting and resuming queued handled: the focus it sets goes a turn later."""
        screen = self.screen
        if not screen._mounted_event.is_set():
            mounted = asyncio.ensure_future(screen._mounted_event.wait())
            await self._wait(mounted, [self])
            mounted.cancel()
        for _ in range(2):
            calls = []
            for pump in (self, screen):
                done: asyncio.Future[None] = asyncio.Future()
                if pump.call_later(_resolve, done):
                    calls.append(done)
            await self._wait(asyncio.gather(*calls), [self, screen])
