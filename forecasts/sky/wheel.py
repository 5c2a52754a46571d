"""A zodiac wheel of one instant as self-contained SVG markup, for pages and emails.

0 deg Aries sits at the left (nine o'clock) and longitude grows counter-clockwise, as on
a chart. The output has no scripts, no external references and no stylesheet: only
presentation attributes, so it survives being inlined into an email or a page.
"""

import math
from itertools import pairwise
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from forecasts.sky.ephemeris import BODIES_BY_SLUG, NODE, BodyPosition
from forecasts.zodiac import SIGNS

if TYPE_CHECKING:
    from forecasts.sky import SkySnapshot

VIEWBOX = 400.0
CENTRE = VIEWBOX / 2.0
OUTER_RADIUS = 190.0
SIGN_RING_RADIUS = 152.0  # inner edge of the ring of sign glyphs
GLYPH_RADIUS = 126.0
ASPECT_RADIUS = 98.0
# Glyphs closer than this (degrees along the circle) are fanned out so they do not overlap.
GLYPH_SPACING_DEG = 9.0
FONT_FAMILY = "'DejaVu Sans', 'Segoe UI Symbol', 'Noto Sans Symbols 2', 'Noto Sans Symbols', sans-serif"
ELEMENT_FILLS = {"fire": "#fbe3d6", "earth": "#e6efd8", "air": "#fdf6d3", "water": "#dbe9f6"}
ASPECT_STROKES = {"square": "#c0392b", "opposition": "#c0392b", "trine": "#2e6fb7", "sextile": "#2e6fb7"}
INK = "#2b2b3a"


def _point(longitude: float, radius: float) -> tuple[float, float]:
    angle = math.radians(longitude)
    return CENTRE - radius * math.cos(angle), CENTRE + radius * math.sin(angle)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _degrees_minutes(position: BodyPosition) -> str:
    minutes_total = round(position.degree * 60.0)
    degrees, minutes = divmod(min(minutes_total, 30 * 60 - 1), 60)
    return f"{degrees}\u00b0{minutes:02d}\u2032 {SIGNS[position.sign_index].name}"


def _spread(longitudes: list[tuple[str, float]]) -> dict[str, float]:
    """Display longitudes for glyphs, nudged apart where bodies crowd together."""
    ordered = sorted(longitudes, key=lambda item: item[1])
    shown = {slug: longitude for slug, longitude in ordered}
    for _ in range(12):
        moved = False
        for (slug_a, _), (slug_b, _) in pairwise(ordered):
            gap = shown[slug_b] - shown[slug_a]
            if gap < GLYPH_SPACING_DEG:
                push = (GLYPH_SPACING_DEG - gap) / 2.0
                shown[slug_a] -= push
                shown[slug_b] += push
                moved = True
        if not moved:
            break
    return shown


def sky_wheel_svg(snapshot: "SkySnapshot", size: int = 360, title: str | None = None) -> str:
    """The snapshot's bodies on a zodiac wheel, as an SVG document string."""
    title = title or f"The sky at {snapshot.at:%Y-%m-%d %H:%M} UTC"
    description = "; ".join(
        f"{BODIES_BY_SLUG[slug].name} {_degrees_minutes(position)}{' retrograde' if position.retrograde else ''}"
        for slug, position in snapshot.bodies.items()
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_fmt(VIEWBOX)} {_fmt(VIEWBOX)}" '
        f'width="{int(size)}" height="{int(size)}" role="img" aria-labelledby="sky-wheel-title sky-wheel-desc" '
        f'font-family="{FONT_FAMILY}">',
        f'<title id="sky-wheel-title">{escape(title)}</title>',
        f'<desc id="sky-wheel-desc">{escape(description)}</desc>',
        f'<circle cx="{_fmt(CENTRE)}" cy="{_fmt(CENTRE)}" r="{_fmt(OUTER_RADIUS)}" fill="#ffffff" '
        f'stroke="{INK}" stroke-width="1.5"/>',
    ]
    parts.extend(_sign_ring())
    parts.extend(_aspect_lines(snapshot))
    parts.extend(_body_glyphs(snapshot.bodies))
    parts.append("</svg>")
    return "\n".join(parts)


def _sign_ring() -> list[str]:
    parts = []
    for index, sign in enumerate(SIGNS):
        start, end = 30.0 * index, 30.0 * (index + 1)
        x1, y1 = _point(start, OUTER_RADIUS)
        x2, y2 = _point(end, OUTER_RADIUS)
        x3, y3 = _point(end, SIGN_RING_RADIUS)
        x4, y4 = _point(start, SIGN_RING_RADIUS)
        # Counter-clockwise on screen is sweep-flag 0 in SVG's y-down coordinates.
        path = (
            f"M {_fmt(x1)} {_fmt(y1)} A {_fmt(OUTER_RADIUS)} {_fmt(OUTER_RADIUS)} 0 0 0 {_fmt(x2)} {_fmt(y2)} "
            f"L {_fmt(x3)} {_fmt(y3)} A {_fmt(SIGN_RING_RADIUS)} {_fmt(SIGN_RING_RADIUS)} 0 0 1 {_fmt(x4)} {_fmt(y4)} Z"
        )
        parts.append(f'<path d="{path}" fill="{ELEMENT_FILLS[sign.element]}" stroke="{INK}" stroke-width="0.75"/>')
        gx, gy = _point(start + 15.0, (OUTER_RADIUS + SIGN_RING_RADIUS) / 2.0)
        parts.append(
            f"<g><title>{escape(sign.name)}</title>"
            f'<text x="{_fmt(gx)}" y="{_fmt(gy)}" font-size="20" text-anchor="middle" dominant-baseline="central" '
            f'fill="{INK}">{escape(sign.glyph)}</text></g>'
        )
    parts.append(
        f'<circle cx="{_fmt(CENTRE)}" cy="{_fmt(CENTRE)}" r="{_fmt(ASPECT_RADIUS)}" fill="none" '
        f'stroke="{INK}" stroke-width="0.5" stroke-opacity="0.5"/>'
    )
    return parts


def _aspect_lines(snapshot: "SkySnapshot") -> list[str]:
    parts = []
    for aspect in snapshot.aspects:
        stroke = ASPECT_STROKES.get(aspect.aspect)
        if stroke is None:  # conjunctions are shown by the glyphs sitting together
            continue
        x1, y1 = _point(snapshot.bodies[aspect.body_a].longitude, ASPECT_RADIUS)
        x2, y2 = _point(snapshot.bodies[aspect.body_b].longitude, ASPECT_RADIUS)
        label = f"{BODIES_BY_SLUG[aspect.body_a].name} {aspect.aspect} {BODIES_BY_SLUG[aspect.body_b].name}"
        parts.append(
            f'<line x1="{_fmt(x1)}" y1="{_fmt(y1)}" x2="{_fmt(x2)}" y2="{_fmt(y2)}" stroke="{stroke}" '
            f'stroke-width="1" stroke-opacity="0.7"><title>{escape(label)}</title></line>'
        )
    return parts


def _body_glyphs(bodies: dict[str, BodyPosition]) -> list[str]:
    parts = []
    shown = _spread([(slug, position.longitude) for slug, position in bodies.items()])
    for slug, position in bodies.items():
        body = BODIES_BY_SLUG[slug]
        tx, ty = _point(position.longitude, SIGN_RING_RADIUS)
        ix, iy = _point(position.longitude, SIGN_RING_RADIUS - 8.0)
        gx, gy = _point(shown[slug], GLYPH_RADIUS)
        label = f"{body.name} {_degrees_minutes(position)}{' retrograde' if position.retrograde else ''}"
        parts.append(f"<g>\n<title>{escape(label)}</title>")
        parts.append(f'<line x1="{_fmt(tx)}" y1="{_fmt(ty)}" x2="{_fmt(ix)}" y2="{_fmt(iy)}" stroke="{INK}"/>')
        parts.append(
            f'<text x="{_fmt(gx)}" y="{_fmt(gy)}" font-size="18" text-anchor="middle" dominant-baseline="central" '
            f"fill={quoteattr(INK)}>{escape(body.glyph)}</text>"
        )
        # The mean node always moves backwards; marking it would only add noise.
        if position.retrograde and slug != NODE:
            # Just inside the glyph, along its own radius, so crowded neighbours do not collide with it.
            rx, ry = _point(shown[slug], GLYPH_RADIUS - 15.0)
            parts.append(
                f'<text x="{_fmt(rx)}" y="{_fmt(ry)}" font-size="10" text-anchor="middle" '
                f'dominant-baseline="central" fill="#c0392b">\u211e</text>'
            )
        parts.append("</g>")
    return parts
