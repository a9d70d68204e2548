"""Random processes correlated from one packet to the next that keep the mean they are given.

netem draws a correlated value as `(1 - c) * U + c * last`, which pulls a draw towards the
one before but also squeezes its distribution towards 1/2, so that a probability of 1 % with
correlation 25 % gives far fewer events than 1 % (a known bias). Here instead:

- An event (a loss, a duplicate, a corruption, a reordering) of probability `p` with
  correlation `c` is a two-state Markov chain: after an event the next one comes with
  probability `p + c (1 - p)`, after none with `p (1 - c)`. Its stationary probability is
  exactly `p` and the correlation between two successive packets' outcomes is exactly `c`.
- A uniform draw (for jitter) with correlation `c` is a Gaussian AR(1) process
  `z' = c z + sqrt(1 - c^2) e`, mapped through the normal CDF: every draw is exactly uniform,
  so each jitter distribution keeps its shape and mean, and successive draws are correlated
  (their underlying Gaussians with coefficient `c`; the uniforms' rank correlation is
  `(6 / pi) asin(c / 2)`, just under `c`).

With correlation 0 both are plain independent draws.
"""

from __future__ import annotations

import math
import random


class CorrelatedEvent:
    """Whether each packet gets an event of probability `p`, correlated `c` with the last."""

    __slots__ = ("_after_event", "_after_none", "_last", "_rng")

    def __init__(self, p: float, c: float, rng: random.Random) -> None:
        self._rng = rng
        self._after_event = p + c * (1.0 - p)
        self._after_none = p * (1.0 - c)
        self._last = False

    def configure(self, p: float, c: float) -> None:
        """New settings; the chain's state stays (a change does not start a burst)."""
        self._after_event = p + c * (1.0 - p)
        self._after_none = p * (1.0 - c)

    def __call__(self) -> bool:
        chance = self._after_event if self._last else self._after_none
        self._last = chance > 0 and self._rng.random() < chance
        return self._last


class CorrelatedUniform:
    """Uniform draws on [0, 1) whose underlying Gaussians are correlated `c` in succession."""

    __slots__ = ("_c", "_rng", "_scale", "_z")

    def __init__(self, c: float, rng: random.Random) -> None:
        self._rng = rng
        self._z = rng.gauss(0.0, 1.0)
        self.configure(c)

    def configure(self, c: float) -> None:
        self._c = c
        self._scale = math.sqrt(max(0.0, 1.0 - c * c))

    def __call__(self) -> float:
        if self._c == 0:
            return self._rng.random()
        self._z = self._c * self._z + self._scale * self._rng.gauss(0.0, 1.0)
        value = 0.5 * (1.0 + math.erf(self._z / math.sqrt(2.0)))
        return min(value, math.nextafter(1.0, 0.0))
