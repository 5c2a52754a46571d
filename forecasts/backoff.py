"""How long to wait before trying again: one rule for every retry loop in the pipeline."""

import math
import random


def backoff_delay(
    attempt: int, base: float, *, cap: float = math.inf, spread: tuple[float, float] = (0.0, 1.0)
) -> float:
    """Seconds to wait after failed attempt number `attempt` (0 for the first): base * 2**attempt,
    at most `cap`, times a random factor drawn from `spread`, so that many workers failing
    together do not retry in step ((0, 1) is "full jitter")."""
    low, high = spread
    return min(cap, base * 2**attempt) * random.uniform(low, high)  # noqa: S311 - jitter, not secrecy
