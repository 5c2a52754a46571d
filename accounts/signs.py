"""A reader's sun sign from their birth date: pure calendar maths, no ORM.

The Sun enters each sign on a date that moves by a day or so from year to year (and the
hour depends on where you were born), so the usual table is only exact away from its edges.
A birth date on a sign's first day or on the day before it is "on the cusp": both signs are
possible and the reader chooses. Every other date has exactly one sign.
"""

from datetime import date, timedelta

from forecasts.zodiac import SIGNS, Sign

# A leap year, so that 29 February has a place in the calendar below.
_REFERENCE_YEAR = 2000


def _day_of_year(month: int, day: int) -> int:
    return date(_REFERENCE_YEAR, month, day).timetuple().tm_yday


def _usual_sign(month: int, day: int) -> Sign:
    """The sign the usual table gives for a month and day."""
    when = _day_of_year(month, day)
    for sign in SIGNS:
        start, end = _day_of_year(*sign.start), _day_of_year(*sign.end)
        if start <= end:
            if start <= when <= end:
                return sign
        elif when >= start or when <= end:  # Capricorn runs across New Year
            return sign
    raise AssertionError(f"no sign covers {month}-{day}")  # pragma: no cover - the table covers the year


def sun_sign_options(birth_date: date) -> tuple[Sign, ...]:
    """The sign for `birth_date`, or the two signs of a cusp date in calendar order."""
    month, day = birth_date.month, birth_date.day
    usual = _usual_sign(month, day)
    reference = date(_REFERENCE_YEAR, month, day)
    for index, sign in enumerate(SIGNS):
        first_day = date(_REFERENCE_YEAR, *sign.start)
        if reference in (first_day - timedelta(days=1), first_day):
            previous = SIGNS[index - 1]
            return (previous, sign)
    return (usual,)


def derived_sign(birth_date: date) -> Sign | None:
    """The one sign a birth date gives, or None on a cusp (the reader must choose)."""
    options = sun_sign_options(birth_date)
    return options[0] if len(options) == 1 else None


def is_cusp(birth_date: date) -> bool:
    """True when a birth date could belong to either of two signs."""
    return len(sun_sign_options(birth_date)) > 1
