from datetime import date, timedelta

import pytest

from accounts.signs import derived_sign, is_cusp, sun_sign_options
from forecasts.zodiac import SIGNS


@pytest.mark.parametrize(
    ("birth_date", "sign"),
    [
        (date(1990, 7, 30), "leo"),
        (date(1985, 1, 1), "capricorn"),
        (date(2000, 12, 31), "capricorn"),
        (date(1992, 2, 29), "pisces"),
        (date(1970, 4, 5), "aries"),
        (date(1999, 5, 1), "taurus"),
        (date(1961, 6, 10), "gemini"),
        (date(1978, 7, 4), "cancer"),
        (date(2001, 9, 1), "virgo"),
        (date(1969, 10, 1), "libra"),
        (date(1955, 11, 5), "scorpio"),
        (date(1988, 12, 1), "sagittarius"),
        (date(1995, 2, 1), "aquarius"),
    ],
)
def test_derived_sign_for_ordinary_dates(birth_date, sign):
    assert derived_sign(birth_date).slug == sign
    assert not is_cusp(birth_date)


@pytest.mark.parametrize("index", range(12))
def test_a_signs_first_day_and_the_day_before_are_a_cusp_between_the_two_signs(index):
    sign, previous = SIGNS[index], SIGNS[index - 1]
    first_day = date(1990, *sign.start)
    for day in (first_day - timedelta(days=1), first_day):
        assert [option.slug for option in sun_sign_options(day)] == [previous.slug, sign.slug]
        assert derived_sign(day) is None
    assert derived_sign(first_day + timedelta(days=1)) == sign
    assert derived_sign(first_day - timedelta(days=2)) == previous


def test_every_day_of_a_leap_year_has_one_sign_or_a_two_sign_cusp_including_the_usual_one():
    day, cusps = date(2024, 1, 1), 0
    while day.year == 2024:
        options = sun_sign_options(day)
        assert len(options) in (1, 2)
        cusps += len(options) == 2
        day += timedelta(days=1)
    assert cusps == 24
