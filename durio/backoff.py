"""A resolved exponential backoff: how long to wait before each retry, and when retrying stops.

The SDK's options resolve to it (durio.sdk.options), the server's config file sets its fields
(durio.config) and the actors apply it, so it sits at the bottom of the layers with no imports but
the standard library's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """A resolved exponential backoff: every field has its value.

    `max_attempts` counts the first attempt too; None means retry forever.
    """

    initial_s: float = 0.05
    factor: float = 2.0
    max_s: float = 10.0
    max_attempts: int | None = None
    max_duration_s: float | None = None
    on_max_attempts: str = "pause"
    jitter: float = 0.25  # +/- this fraction, so that many failing invocations do not retry in lockstep

    def delay_s(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Delay before the next attempt, after `failed_attempts` failures (1 = first failure)."""
        base = min(self.max_s, self.initial_s * self.factor ** max(0, failed_attempts - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1.0 + spread))

    def exhausted(self, failed_attempts: int, elapsed_s: float = 0.0) -> bool:
        if self.max_attempts is not None and failed_attempts >= self.max_attempts:
            return True
        return self.max_duration_s is not None and elapsed_s >= self.max_duration_s
