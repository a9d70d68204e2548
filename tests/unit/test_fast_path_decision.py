"""The fast path's decision (engine.core.fast_path): the kernel forwards a direction only once
it has been transparent, idle, built and uncaptured for a second with no flush; the engine
takes over the moment any of that stops."""

from __future__ import annotations

from engine.core.fast_path import HAND_BACK_AFTER, DirectionState, FastPathClock, engine_needed

QUIET = DirectionState(transparent=True, idle=True, building=False, capturing=False)


def test_only_a_transparent_idle_built_uncaptured_direction_can_go_to_the_kernel() -> None:
    assert not engine_needed(QUIET)
    for field in ("transparent", "idle"):
        assert engine_needed(DirectionState(**{**_fields(QUIET), field: False}))
    for field in ("building", "capturing"):
        assert engine_needed(DirectionState(**{**_fields(QUIET), field: True}))
    assert engine_needed(DirectionState(**_fields(QUIET), one_link=False))  # flow rules


def test_the_kernel_is_handed_the_direction_a_second_after_it_is_quiet() -> None:
    clock = FastPathClock()
    assert HAND_BACK_AFTER == 1.0
    assert not clock.kernel_forwards(QUIET, 10.0)
    assert not clock.kernel_forwards(QUIET, 10.999)
    assert clock.kernel_forwards(QUIET, 11.0)
    assert clock.kernel_forwards(QUIET, 50.0)


def test_an_impairment_a_capture_or_a_flush_takes_it_back_at_once_and_restarts_the_second() -> None:
    clock = FastPathClock()
    clock.kernel_forwards(QUIET, 0.0)
    assert clock.kernel_forwards(QUIET, 1.0)
    impaired = DirectionState(transparent=False, idle=True, building=False, capturing=False)
    assert not clock.kernel_forwards(impaired, 1.5)
    assert not clock.kernel_forwards(QUIET, 2.0)  # quiet again: a full second from here
    assert not clock.kernel_forwards(QUIET, 2.9)
    assert clock.kernel_forwards(QUIET, 3.0)
    assert not clock.kernel_forwards(QUIET, 3.1, flushed=True)
    assert not clock.kernel_forwards(QUIET, 3.2)
    assert clock.kernel_forwards(QUIET, 4.2)
    captured = DirectionState(transparent=True, idle=True, building=False, capturing=True)
    assert not clock.kernel_forwards(captured, 4.3)
    held = DirectionState(transparent=True, idle=False, building=False, capturing=False)
    assert not clock.kernel_forwards(held, 9.0)  # a retired link still holds frames


def _fields(state: DirectionState) -> dict[str, bool]:
    return {
        "transparent": state.transparent,
        "idle": state.idle,
        "building": state.building,
        "capturing": state.capturing,
    }
