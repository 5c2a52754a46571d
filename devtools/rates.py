"""Counting events in time windows, for checks on a send rate."""


def most_in_any_window(times: list[float], window: float) -> int:
    """The most of `times` (seconds) inside any `window`-second interval, closed at both ends."""
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best
