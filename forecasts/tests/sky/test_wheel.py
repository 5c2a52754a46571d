"""The sky wheel: self-contained, valid, accessible SVG."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from forecasts.sky import BODIES, NODE, sky_at, sky_wheel_svg
from forecasts.zodiac import SIGNS

SVG = "{http://www.w3.org/2000/svg}"
MOMENT = datetime(2025, 3, 20, 9, 1, 29, tzinfo=UTC)  # Mercury and Venus both retrograde


@pytest.fixture(scope="module")
def snapshot():
    return sky_at(MOMENT)


@pytest.fixture(scope="module")
def svg(snapshot):
    return sky_wheel_svg(snapshot)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own markup, not untrusted input


def test_it_is_valid_xml_sized_by_its_viewbox(svg):
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == "0 0 400 400"
    assert root.get("role") == "img"


def test_it_has_a_title_and_a_description_for_screen_readers(svg, snapshot):
    root = parse(svg)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "The sky at 2025-03-20 09:01 UTC"
    description = root.find(f"{SVG}desc").text
    assert "Mercury 7\u00b053\u2032 Aries retrograde" in description
    assert "Sun 0\u00b000\u2032 Aries" in description


def test_a_custom_title_and_size_are_used_and_escaped(snapshot):
    root = parse(sky_wheel_svg(snapshot, size=200, title="Aries & friends <today>"))
    assert root.find(f"{SVG}title").text == "Aries & friends <today>"
    assert (root.get("width"), root.get("height")) == ("200", "200")


def test_it_shows_every_sign_and_every_body_glyph(svg):
    texts = [element.text or "" for element in parse(svg).iter(f"{SVG}text")]
    for sign in SIGNS:
        assert sign.glyph in texts
    for body in BODIES:
        assert body.glyph in texts


def test_retrograde_planets_are_marked_with_the_prescription_sign(svg, snapshot):
    marked = svg.count("\u211e")
    expected = sum(1 for slug, position in snapshot.bodies.items() if position.retrograde and slug != NODE)
    assert marked == expected == 2


def test_it_needs_nothing_outside_itself(svg):
    assert "<script" not in svg
    assert "href" not in svg
    assert "url(" not in svg
    assert "<style" not in svg
    assert not re.search(r"\bon[a-z]+=", svg)


def test_glyphs_of_crowded_bodies_are_fanned_out(svg):
    # Sun, Neptune, Venus, Mercury and the node sit within ~10 deg of 0 Aries on this date.
    positions = {
        (round(float(element.get("x"))), round(float(element.get("y"))))
        for element in parse(svg).iter(f"{SVG}text")
        if element.get("font-size") == "18"
    }
    assert len(positions) == len(BODIES)
