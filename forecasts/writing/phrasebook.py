"""The phrasebook: every sentence the offline composer writes, loaded from reviewable YAML files.

forecasts/writing/phrasebook/README.md describes the files. This module reads them, checks each
entry against the schema (a bad entry stops with the file, its line and the reason) and
answers "the phrasings for this" in O(1). Pure: no Django.

A phrasing's id is a short hash of its family and words, so editing one phrasing never changes
the id of another, and the composer's memory of what a sign has read stays valid.
"""

import functools
import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

import yaml

PHRASEBOOK_DIR = Path(__file__).resolve().parent / "phrasebook"

BODIES = ("sun", "moon", "mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto", "north_node")
PERSONAL = ("moon", "sun", "mercury", "venus", "mars")
STATION_BODIES = ("mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto")
TONES = ("flowing", "tense", "blend")
LUNATION_PHASES = ("new_moon", "first_quarter", "full_moon", "last_quarter")
MOON_PHASES = (
    "new_moon",
    "waxing_crescent",
    "first_quarter",
    "waxing_gibbous",
    "full_moon",
    "waning_gibbous",
    "last_quarter",
    "waning_crescent",
)
TOPIC_NAMES = ("love", "career", "money", "health", "growth")
HEADLINE_LEADS = ("moon", "ingress", "station", "lunation", "eclipse", "aspect", "quiet")
HOUSES = tuple(range(1, 13))

# shape -> (required placeholders, optional placeholders)
FACT_SHAPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "moon_stay": (frozenset({"sign", "area"}), frozenset()),
    "moon_ingress": (frozenset({"sign", "area", "when"}), frozenset({"from_area"})),
    "ingress": (frozenset({"Body", "sign", "area", "when"}), frozenset()),
    "ingress_back": (frozenset({"Body", "sign", "area", "when"}), frozenset()),
    "station_retrograde": (frozenset({"Body", "sign", "when"}), frozenset({"area"})),
    "station_direct": (frozenset({"Body", "sign", "when"}), frozenset({"area"})),
    **{phase: (frozenset({"sign", "area", "when"}), frozenset()) for phase in LUNATION_PHASES},
    "eclipse": (frozenset({"eclipse", "sign", "area", "when"}), frozenset()),
    **{f"aspect_exact_{tone}": (frozenset({"A", "B", "when"}), frozenset()) for tone in TONES},
    **{f"aspect_state_{tone}": (frozenset({"A", "B"}), frozenset()) for tone in TONES},
    "retrograde": (frozenset({"Body", "sign"}), frozenset({"area"})),
    "background": (frozenset({"Body", "sign"}), frozenset({"area"})),
}
NO_PLACEHOLDERS: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())


@dataclass(frozen=True)
class Family:
    """What one family's entries are keyed by, and which values each key may take."""

    keys: dict[str, tuple]
    minimum: int  # phrasings each entry needs, so the 30-reading memory has room
    complete: bool = True  # every combination of key values must have an entry

    def placeholders(self, key: dict) -> tuple[frozenset[str], frozenset[str]]:
        return NO_PLACEHOLDERS


class _FactFamily(Family):
    def placeholders(self, key: dict) -> tuple[frozenset[str], frozenset[str]]:
        return FACT_SHAPES[key["shape"]]


class _HeadlineFamily(Family):
    def placeholders(self, key: dict) -> tuple[frozenset[str], frozenset[str]]:
        return frozenset(), frozenset({"Body", "sign", "area"})


FAMILIES: dict[str, Family] = {
    "fact": _FactFamily({"shape": tuple(FACT_SHAPES)}, minimum=6),
    "meaning": Family({"body": PERSONAL, "house": HOUSES}, minimum=4),
    "aspect": Family({"with": BODIES, "tone": TONES}, minimum=5),
    "station": Family({"body": STATION_BODIES, "direction": ("retrograde", "direct")}, minimum=3),
    "lunation": Family({"phase": LUNATION_PHASES}, minimum=6),
    "eclipse": Family({"eclipse": ("solar", "lunar")}, minimum=4),
    "phase": Family({"phase": MOON_PHASES}, minimum=6),
    "advice": Family({"topic": TOPIC_NAMES, "tone": TONES}, minimum=10),
    "do": Family({"tone": TONES}, minimum=12),
    "dont": Family({"tone": TONES}, minimum=12),
    "closing": Family({"tone": TONES}, minimum=12),
    "headline": _HeadlineFamily({"lead": HEADLINE_LEADS}, minimum=8),
    "area": Family({"house": HOUSES}, minimum=3),
}


class PhrasebookError(ValueError):
    """A phrasebook file that does not follow the schema: names the file, the line and why."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


@dataclass(frozen=True)
class Phrasing:
    id: str
    family: str
    key: tuple
    text: str


def phrasing_id(family: str, text: str) -> str:
    return hashlib.sha1(f"{family}\n{text}".encode()).hexdigest()[:12]  # noqa: S324 - an id, not security


def _placeholders(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as error:
        raise ValueError(f"unbalanced braces ({error})") from None


def entry_key(family: str, values: dict) -> tuple:
    """The lookup key of an entry: its `for` values in the family's key order."""
    return tuple(values[name] for name in FAMILIES[family].keys)


class Phrasebook:
    """All phrasings, by family and key."""

    def __init__(self, entries: dict[tuple[str, tuple], tuple[Phrasing, ...]]) -> None:
        self._entries = entries
        self.by_id = {p.id: p for phrasings in entries.values() for p in phrasings}

    def options(self, family: str, **values) -> tuple[Phrasing, ...]:
        """The phrasings for one entry, e.g. options("meaning", body="moon", house=5); () if none."""
        return self._entries.get((family, entry_key(family, values)), ())

    def __len__(self) -> int:
        return len(self.by_id)

    def families(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for family, _ in self._entries:
            counts[family] = counts.get(family, 0) + 1
        return counts


# libyaml's parser when PyYAML was built with it: the pure-Python one takes seconds for the book,
# and a web process pays that on the first reading it writes on demand.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _scalar(node: yaml.Node, path: Path, what: str):
    if not isinstance(node, yaml.ScalarNode):
        raise PhrasebookError(path, node.start_mark.line + 1, f"{what} must be a single value")
    # Safe construction of the composed node itself (types resolved as safe_load would).
    return yaml.constructor.SafeConstructor().construct_object(node)


def _mapping(node: yaml.Node, path: Path, what: str) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise PhrasebookError(path, node.start_mark.line + 1, f"{what} must be a mapping")
    return {str(_scalar(k, path, "a key")): v for k, v in node.value}


def _read_file(path: Path, entries: dict, seen_ids: dict[str, tuple[Path, int]]) -> None:
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise PhrasebookError(path, (mark.line + 1) if mark else 1, f"not valid YAML: {error}") from None
    if root is None:
        raise PhrasebookError(path, 1, "the file is empty")
    top = _mapping(root, path, "the file")
    if "family" not in top or "entries" not in top:
        raise PhrasebookError(path, root.start_mark.line + 1, "needs `family:` and `entries:`")
    family_name = _scalar(top["family"], path, "family")
    family = FAMILIES.get(family_name)
    if family is None:
        raise PhrasebookError(path, top["family"].start_mark.line + 1, f"unknown family {family_name!r}")
    if not isinstance(top["entries"], yaml.SequenceNode):
        raise PhrasebookError(path, top["entries"].start_mark.line + 1, "`entries` must be a list")
    for entry_node in top["entries"].value:
        line = entry_node.start_mark.line + 1
        entry = _mapping(entry_node, path, "an entry")
        if set(entry) != {"for", "phrasings"}:
            raise PhrasebookError(path, line, "an entry has exactly `for:` and `phrasings:`")
        for_values = {k: _scalar(v, path, k) for k, v in _mapping(entry["for"], path, "`for`").items()}
        if set(for_values) != set(family.keys):
            raise PhrasebookError(path, line, f"`for` of a {family_name} entry needs {', '.join(family.keys)}")
        for name, allowed in family.keys.items():
            if for_values[name] not in allowed:
                raise PhrasebookError(path, line, f"{name}={for_values[name]!r} is not one of {allowed}")
        key = (family_name, entry_key(family_name, for_values))
        if key in entries:
            raise PhrasebookError(path, line, f"a second entry for {for_values}")
        required, optional = family.placeholders(for_values)
        if not isinstance(entry["phrasings"], yaml.SequenceNode):
            raise PhrasebookError(path, line, "`phrasings` must be a list")
        phrasings = []
        for node in entry["phrasings"].value:
            text_line = node.start_mark.line + 1
            text = _scalar(node, path, "a phrasing")
            if not isinstance(text, str) or not text.strip():
                raise PhrasebookError(path, text_line, "a phrasing must be non-empty text")
            text = " ".join(text.split())
            try:
                used = _placeholders(text)
            except ValueError as error:
                raise PhrasebookError(path, text_line, f"{text!r}: {error}") from None
            if missing := required - used:
                raise PhrasebookError(path, text_line, f"{text!r} lacks {{{'}, {'.join(sorted(missing))}}}")
            if unknown := used - required - optional:
                raise PhrasebookError(path, text_line, f"{text!r} uses {{{'}, {'.join(sorted(unknown))}}}")
            phrasing = Phrasing(phrasing_id(family_name, text), family_name, key[1], text)
            if phrasing.id in seen_ids:
                first = seen_ids[phrasing.id]
                raise PhrasebookError(path, text_line, f"{text!r} repeats {first[0].name}:{first[1]}")
            seen_ids[phrasing.id] = (path, text_line)
            phrasings.append(phrasing)
        if len(phrasings) < family.minimum:
            raise PhrasebookError(
                path, line, f"{for_values} has {len(phrasings)} phrasings; a {family_name} entry needs {family.minimum}"
            )
        entries[key] = tuple(phrasings)


def phrasebook_read(directory: Path | None = None) -> Phrasebook:
    """Every *.yaml file in `directory`, checked; raises PhrasebookError at the first bad entry."""
    directory = Path(directory or PHRASEBOOK_DIR)
    entries: dict[tuple[str, tuple], tuple[Phrasing, ...]] = {}
    seen: dict[str, tuple[Path, int]] = {}
    files = sorted(directory.glob("*.yaml"))
    for path in files:
        _read_file(path, entries, seen)
    for family_name, family in FAMILIES.items():
        if not family.complete:
            continue
        for combination in _combinations(family):
            if (family_name, combination) not in entries:
                wanted = dict(zip(family.keys, combination, strict=True))
                raise PhrasebookError(directory, 0, f"no {family_name} entry for {wanted}")
    return Phrasebook(entries)


def _combinations(family: Family) -> list[tuple]:
    combos: list[tuple] = [()]
    for allowed in family.keys.values():
        combos = [(*combo, value) for combo in combos for value in allowed]
    return combos


@functools.cache
def phrasebook() -> Phrasebook:
    """The shipped phrasebook, read once per process."""
    return phrasebook_read()
