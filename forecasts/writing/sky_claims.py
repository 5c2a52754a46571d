"""How a text names the sky: the words for bodies, signs, aspects and houses, and the patterns
that find each kind of sky claim in a sentence. forecasts/writing/grounding.py judges what they
find against the facts (forecasts/writing/sky_truth.py).
"""

import re

from forecasts.zodiac import SIGN_SLUGS

SIGNS = SIGN_SLUGS  # forecasts.zodiac is the one list of signs
SIGN_ADJECTIVES = {
    "arian": "aries",
    "taurean": "taurus",
    "geminian": "gemini",
    "cancerian": "cancer",
    "leonine": "leo",
    "virgoan": "virgo",
    "libran": "libra",
    "scorpionic": "scorpio",
    "sagittarian": "sagittarius",
    "capricornian": "capricorn",
    "aquarian": "aquarius",
    "piscean": "pisces",
}
BODY_WORDS = {
    "sun": "sun",
    "moon": "moon",
    "mercury": "mercury",
    "venus": "venus",
    "mars": "mars",
    "jupiter": "jupiter",
    "saturn": "saturn",
    "uranus": "uranus",
    "neptune": "neptune",
    "pluto": "pluto",
    "north node": "north_node",
    "lunar node": "north_node",
    "lunar nodes": "north_node",
    "moon's nodes": "north_node",
    "nodes of the moon": "north_node",
    "south node": "south_node",
}
ASPECT_FORMS = {
    "conjunction": ("conjunctions", "conjunction", "conjunct", "conjoins", "conjoin", "conjoined", "conjoining"),
    "sextile": ("sextiles", "sextile", "sextiling", "sextiled"),
    "square": ("squares", "square", "squaring", "squared"),
    "trine": ("trines", "trine", "trining", "trined"),
    "opposition": ("oppositions", "opposition", "opposes", "opposing", "opposed"),
}
ASPECT_OF_WORD = {form: name for name, forms in ASPECT_FORMS.items() for form in forms}
ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
}
UNSUPPORTED = (
    "chiron",
    "lilith",
    "black moon",
    "ceres",
    "pallas",
    "juno",
    "vesta",
    "eris",
    "vertex",
    "part of fortune",
    "ascendant",
    "descendant",
    "midheaven",
    "rising sign",
    "void of course",
    "void-of-course",
    "out of bounds",
    "out-of-bounds",
    "supermoon",
    "super moon",
    "micromoon",
    "blue moon",
    "blood moon",
)


def _alternation(words) -> str:
    return "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in sorted(words, key=len, reverse=True))


_BODY = rf"\b(?:the\s+)?(?:{_alternation(BODY_WORDS)})\b"
_BODY_LIST = rf"{_BODY}(?:\s*(?:,|and|&|,\s*and)\s*{_BODY})*"
_SIGN = rf"\b(?:{_alternation(SIGNS)})(?:'s|s)?\b"
_ASPECT = rf"\b(?:{_alternation(ASPECT_OF_WORD)})\b"
# "Venus opposite Mars" is a claim, but "opposite" alone is ordinary English, not an aspect word.
CLAIM_ASPECT_OF_WORD = {**ASPECT_OF_WORD, "opposite": "opposition"}
_CLAIM_ASPECT = rf"\b(?:{_alternation(CLAIM_ASPECT_OF_WORD)})\b"
HOUSE = rf"\b(?:{_alternation(ORDINALS)}|1[0-2](?:st|nd|rd|th)|[1-9](?:st|nd|rd|th))\s+house\b"
_WORD = r"[\w'-]+\s+"
_APPOSITIVE = r"(?:\s*,[^,.;:!?#]{1,60},)?"

# Up to four words a state claim may put between a body and "in <Sign>" ("Venus, the planet of
# love, is still comfortably in Pisces"); another body ends the claim.
_STATE_FILLER = rf"(?:(?!{_BODY}|your\b)[\w'-]+\s+){{0,4}}"
_IN = (
    r"(?:in|through|transiting|transits|tours|touring|occupies|occupying|visits|visiting)\s+"
    r"(?:the\s+(?:sign\s+of\s+)?)?"
)
_INGRESS_VERB = (
    r"(?:enters?|entering|entry\s+into|ingress(?:es)?(?:\s+into)?|"
    r"(?:moves?|moving|slips?|slipping|steps?|stepping|glides?|gliding|crosses?|crossing|heads?|heading|"
    r"shifts?|shifting|arrives?|arriving|returns?|returning|retreats?|retreating|backs?|backing|dips?|"
    r"dipping|passes|passing|changes\s+sign|changing\s+signs?)\s+(?:back\s+)?(?:into|to|in)|into)\s+"
    r"(?:the\s+sign\s+of\s+)?"
)
DEICTIC = re.compile(
    r"\b(?:today|today's|tonight|tonight's|this\s+(?:morning|afternoon|evening|night)|right\s+now|yesterday|"
    r"tomorrow|midnight|noon|(?:on\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?)\b",
    re.IGNORECASE,
)
CLOCK = re.compile(r"\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.)(?!\w)|\b(?:utc|gmt)\b", re.IGNORECASE)
DEGREES = re.compile(r"\d+(?:\.\d+)?\s*(?:°|º|degrees?\b|deg\b)|\borbs?\s+(?:of\s+)?\d", re.IGNORECASE)

PATTERNS = {
    "lunation": re.compile(
        rf"\b(?P<phase>new|full)\s+moons?\b(?:\s+(?:{_WORD}){{0,2}}?(?:in|of)\s+(?P<sign>{_SIGN}))?", re.IGNORECASE
    ),
    "quarter": re.compile(
        rf"\b(?P<phase>first|last|third|final|1st|3rd|half|quarter)\s+(?:quarter\s+moons?|quarter|moons?)\b"
        rf"(?:\s+(?:{_WORD}){{0,2}}?in\s+(?P<sign>{_SIGN}))?",
        re.IGNORECASE,
    ),
    "eclipse": re.compile(
        rf"\b(?:(?P<ekind>solar|lunar)\s+)?eclipses?\b(?:\s+(?:{_WORD}){{0,2}}?in\s+(?P<sign>{_SIGN}))?", re.IGNORECASE
    ),
    "season": re.compile(rf"(?P<sign>{_SIGN})\s+season\b", re.IGNORECASE),
    "ingress": re.compile(
        rf"(?P<bodies>{_BODY_LIST})(?:'s)?\s+(?:{_WORD}){{0,3}}?{_INGRESS_VERB}"
        rf"(?:(?P<sign>{_SIGN})|your\s+(?P<house>{HOUSE}))",
        re.IGNORECASE,
    ),
    "station": re.compile(
        rf"(?P<body>{_BODY})(?:'s)?\s+(?P<pred>(?:{_WORD}){{0,2}}?(?:"
        r"(?:stations?|stationing|turns?|turning|goes|going|went|shifts?|shifting)\s+(?P<dir>retrograde|direct)|"
        r"(?P<dir2>retrograde|direct)\s+station|"
        r"(?:ends?|ending|finishes|finishing|wraps\s+up|concludes?)\s+(?:its\s+|their\s+|a\s+|the\s+)?(?P<end>retrograde)|"
        r"(?:begins?|beginning|starts?|starting)\s+(?:its\s+|their\s+|a\s+|the\s+)?(?P<begin>retrograde)|"
        r"retrograde\s+(?:(?P<end2>ends|ending|finishes|is\s+over|wraps\s+up)|(?P<begin2>begins|starts))|"
        r"stations?\b|stationing|stationary|stands?\s+still|standing\s+still))",
        re.IGNORECASE,
    ),
    "retrograde": re.compile(
        rf"(?P<body>{_BODY})(?:'s)?\s+(?P<pred>(?:(?:is|are|remains?|stays?|still|now|currently|being|also|both|was|"
        r"has\s+been|continues?\s+to\s+be|moving|moves|travels?|travell?ing|goes|appears|appearing|seems)\s+){0,3}"
        r"(?:retrograde|rx))\b",
        re.IGNORECASE,
    ),
    "retrograde_before": re.compile(rf"\b(?P<pred>retrograde)\s+(?P<body>{_BODY})", re.IGNORECASE),
    "direct": re.compile(
        rf"(?P<body>{_BODY})(?:'s)?\s+(?P<pred>(?:(?:is|are|remains?|stays?|still|now|currently|once\s+again|again|"
        r"back|moving|moves|travels?|goes|going|was)\s+){0,3}direct)\b",
        re.IGNORECASE,
    ),
    "aspect_between": re.compile(
        rf"(?P<asp>{_ASPECT})\s+(?:between|of|from|linking|joining|connecting)\s+(?P<a>{_BODY})\s+"
        rf"(?:and|&|to|with)\s+(?P<b>{_BODY})",
        re.IGNORECASE,
    ),
    "aspect_pair": re.compile(
        rf"(?P<a>{_BODY})\s+(?:and|&)\s+(?P<b>{_BODY})\s+(?:{_WORD}){{0,3}}?(?:an?\s+)?(?P<asp>{_ASPECT})"
        rf"(?:\s+(?:or|and)\s+(?:an?\s+)?(?P<asp2>{_ASPECT}))?",
        re.IGNORECASE,
    ),
    "aspect": re.compile(
        rf"(?P<a>{_BODY})\s+(?:(?:is|are|now|exactly|forms?|forming|makes?|making|in|an?|casts?|casting|still|also|"
        rf"tightly|closely)\s+){{0,3}}(?P<asp>{_CLAIM_ASPECT})(?:\s+(?:to|with|of))?\s+(?P<b>{_BODY})",
        re.IGNORECASE,
    ),
    "meet": re.compile(
        rf"(?P<a>{_BODY})\s+(?:and|&)\s+(?P<b>{_BODY})\s+(?:(?:are|now|both|finally)\s+)?(?P<asp>meet|meeting|"
        r"together|come\s+together|coming\s+together|unite|uniting|join\s+forces|joining\s+forces|merge|merging)\b|"
        rf"(?P<a2>{_BODY})\s+(?P<asp2>meets|joins|unites\s+with|merges\s+with)\s+(?P<b2>{_BODY})",
        re.IGNORECASE,
    ),
    # Any body followed within a few words by "your <n>th house" places it there ("the Moon
    # crosses your eighth house", "Venus brings charm to your first house").
    "house": re.compile(
        rf"(?P<bodies>{_BODY_LIST})(?:'s)?{_APPOSITIVE}\s+{_STATE_FILLER}(?:[\w'-]+\s+)?your\s+(?P<house>{HOUSE})",
        re.IGNORECASE,
    ),
    "in_sign": re.compile(
        rf"(?P<bodies>{_BODY_LIST})(?:'s)?{_APPOSITIVE}\s+{_STATE_FILLER}{_IN}(?P<sign>{_SIGN})", re.IGNORECASE
    ),
    "sign_body": re.compile(rf"(?P<sign>{_SIGN})\s+(?P<body>{_BODY})", re.IGNORECASE),
}
MENTIONS = {
    "sign": re.compile(rf"(?P<sign>{_SIGN})|\b(?P<adj>{_alternation(SIGN_ADJECTIVES)})s?\b", re.IGNORECASE),
    "aspect": re.compile(rf"(?P<asp>{_ASPECT})", re.IGNORECASE),
    "house": re.compile(rf"(?P<house>{HOUSE})", re.IGNORECASE),
    "retrograde": re.compile(r"\b(?:retrograde|retrogrades|retrograding|rx)\b", re.IGNORECASE),
    "station": re.compile(r"\b(?:station|stations|stationing|stationary)\b", re.IGNORECASE),
    "ingress": re.compile(r"\bingress(?:es)?\b", re.IGNORECASE),
    "waxing": re.compile(r"\bwaxing\b", re.IGNORECASE),
    "waning": re.compile(r"\bwaning\b", re.IGNORECASE),
    "crescent": re.compile(r"\bcrescent\b", re.IGNORECASE),
    "gibbous": re.compile(r"\bgibbous\b", re.IGNORECASE),
    "unsupported": re.compile(rf"\b(?:{_alternation(UNSUPPORTED)})\b", re.IGNORECASE),
}
_ANY_BODY = re.compile(_BODY, re.IGNORECASE)
DIGIT = re.compile(r"\d")
_ANY_SIGN = re.compile(_SIGN, re.IGNORECASE)
ASPECT_STEMS = ("conjun", "sextil", "squar", "trin", "oppos")
_MEET_STEMS = ("meet", "together", "unit", "join", "merg")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)]*\s+|\n+")


def body_slug(text: str) -> str:
    words = " ".join(text.lower().replace("’", "'").split())
    words = words.removeprefix("the ")
    return BODY_WORDS.get(words, words)


def bodies_in(text: str) -> list[str]:
    return [body_slug(match.group(0)) for match in re.finditer(_BODY, text, re.IGNORECASE)]


def sign_slug(text: str) -> str:
    word = text.lower().replace("’", "'").removesuffix("'s")
    if word not in SIGNS and word.endswith("s") and word[:-1] in SIGNS:
        word = word[:-1]
    return word


def house_number(text: str) -> int:
    word = text.lower().split()[0]
    return ORDINALS.get(word) or int(re.sub(r"\D", "", word))


def pattern_gates(text: str) -> set[str]:
    """Which patterns can possibly match (cheap substring tests keep the checker fast)."""
    low = text.lower()
    gates = set()
    if "moon" in low:
        gates.add("lunation")
    if "quarter" in low or "half" in low:
        gates.add("quarter")
    if "eclipse" in low:
        gates.add("eclipse")
    has_sign = bool(_ANY_SIGN.search(text))
    if has_sign and "season" in low:
        gates.add("season")
    if not _ANY_BODY.search(text):
        return gates
    gates.add("ingress")
    if any(word in low for word in ("station", "retrograde", "direct", "still")):
        gates.add("station")
    if "retrograde" in low or "rx" in low:
        gates.update(("retrograde", "retrograde_before"))
    if "direct" in low:
        gates.add("direct")
    if any(stem in low for stem in ASPECT_STEMS):
        gates.update(("aspect_between", "aspect_pair", "aspect"))
    if any(stem in low for stem in _MEET_STEMS):
        gates.add("meet")
    if "house" in low:
        gates.add("house")
    if has_sign:
        gates.update(("in_sign", "sign_body"))
    return gates


def sentences(text: str) -> list[str]:
    """The text split into sentences (and lines)."""
    return [part for part in _SENTENCE_END.split(text or "") if part and part.strip()]
