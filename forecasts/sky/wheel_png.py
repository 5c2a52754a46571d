"""The sky wheel as a PNG, for emails: Gmail and Outlook remove inline SVG, pages keep it.

The PNG is the very SVG of forecasts/sky/wheel.py drawn by cairosvg (Debian's libcairo2), so
pages and emails show the same wheel. Drawing one takes a fifth of a second: it is done once
per date and process, and the site serves it with a year's cache (a date's sky never changes).
"""

import functools
from datetime import date

# Twice the size it is shown at in the email, so it stays sharp on high-density screens.
PNG_SIZE = 640
# Bump when the wheel's drawing changes: it is part of the URL, which caches treat as immutable.
WHEEL_STYLE = 1


class WheelUnavailable(RuntimeError):
    """This machine cannot draw PNGs (libcairo2 is missing)."""


def svg_to_png(svg: str, size: int = PNG_SIZE) -> bytes:
    try:
        import cairosvg  # loads libcairo: only the processes that draw a wheel pay for it
    except OSError as error:  # cairocffi raises OSError when the C library is missing
        raise WheelUnavailable(f"cannot draw the sky wheel: {error} (install Debian's libcairo2)") from error
    return cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=size, output_height=size)


@functools.lru_cache(maxsize=8)
def noon_wheel_png(day: date) -> bytes:
    """The PNG of noon_wheel(day); b"" outside the ephemeris' range."""
    from forecasts.sky import noon_wheel

    svg, _ = noon_wheel(day)
    return svg_to_png(svg) if svg else b""
