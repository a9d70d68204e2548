"""The cyclic collector kept out of the way of large changes, in the supervisor (a spec read,
checked and sent) and in a worker (a staged plan built between rounds of forwarding)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused(freeze: bool = False) -> Iterator[None]:
    """No cyclic collection while a spec is read, checked and put in force: a spec of 10,000
    flows is some 300,000 objects, whose making triggered full passes over everything (it
    took 0.3-0.9 s instead of 0.2). With `freeze` (a SIGHUP: rare), what is left after is
    frozen, so that the spec in force, which lives long, is not walked again either (what
    is dropped later is freed by its reference count: specs hold no cycles); without, the
    collector catches up after the change is sent (in this process, not the workers')."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was:
            gc.enable()
