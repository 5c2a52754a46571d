"""The twelve signs and their plain facts. Pure data: no ORM, no network."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Sign:
    slug: str
    name: str
    glyph: str
    element: str
    modality: str
    ruler: str
    # Usual sun-sign date range (month, day); the exact cusp moves by a day from year to year.
    start: tuple[int, int]
    end: tuple[int, int]

    @property
    def index(self) -> int:
        return SIGN_SLUGS.index(self.slug)

    @property
    def dates(self) -> str:
        return f"{MONTH_ABBR[self.start[0]]} {self.start[1]} – {MONTH_ABBR[self.end[0]]} {self.end[1]}"


MONTH_ABBR = ["", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# U+FE0E asks for the text (not emoji) form of each glyph.
SIGNS: tuple[Sign, ...] = (
    Sign("aries", "Aries", "\u2648\ufe0e", "fire", "cardinal", "mars", (3, 21), (4, 19)),
    Sign("taurus", "Taurus", "\u2649\ufe0e", "earth", "fixed", "venus", (4, 20), (5, 20)),
    Sign("gemini", "Gemini", "\u264a\ufe0e", "air", "mutable", "mercury", (5, 21), (6, 20)),
    Sign("cancer", "Cancer", "\u264b\ufe0e", "water", "cardinal", "moon", (6, 21), (7, 22)),
    Sign("leo", "Leo", "\u264c\ufe0e", "fire", "fixed", "sun", (7, 23), (8, 22)),
    Sign("virgo", "Virgo", "\u264d\ufe0e", "earth", "mutable", "mercury", (8, 23), (9, 22)),
    Sign("libra", "Libra", "\u264e\ufe0e", "air", "cardinal", "venus", (9, 23), (10, 22)),
    Sign("scorpio", "Scorpio", "\u264f\ufe0e", "water", "fixed", "pluto", (10, 23), (11, 21)),
    Sign("sagittarius", "Sagittarius", "\u2650\ufe0e", "fire", "mutable", "jupiter", (11, 22), (12, 21)),
    Sign("capricorn", "Capricorn", "\u2651\ufe0e", "earth", "cardinal", "saturn", (12, 22), (1, 19)),
    Sign("aquarius", "Aquarius", "\u2652\ufe0e", "air", "fixed", "uranus", (1, 20), (2, 18)),
    Sign("pisces", "Pisces", "\u2653\ufe0e", "water", "mutable", "neptune", (2, 19), (3, 20)),
)
SIGN_SLUGS: tuple[str, ...] = tuple(sign.slug for sign in SIGNS)
SIGNS_BY_SLUG: dict[str, Sign] = {sign.slug: sign for sign in SIGNS}
SIGN_CHOICES: list[tuple[str, str]] = [(sign.slug, sign.name) for sign in SIGNS]


def sign_for_longitude(longitude: float) -> Sign:
    """The sign an ecliptic longitude (degrees) falls in."""
    return SIGNS[int((longitude % 360.0) // 30.0)]
