"""Placeholders for each reader's values in a forecast's rendered email, and templates compiled once.

A forecast's parts carry `[[hz:name]]` placeholders and marked topic sections; each reader's
email is then made by filling them, by string joins only.
"""

import re
from dataclasses import dataclass

TOKEN_RE = re.compile(r"\[\[hz:([a-z_]+(?::[0-9]+)?)\]\]")
SECTION_RE = re.compile(r"<!--hz:section:([a-z0-9_]+)-->(.*?)<!--/hz:section:\1-->\n?", re.S)


def token(name: str) -> str:
    """The placeholder a reader-specific value replaces in the per-forecast templates."""
    return f"[[hz:{name}]]"


@dataclass(frozen=True)
class _Token:
    name: str


@dataclass(frozen=True)
class _Section:
    topic: str
    pieces: tuple


def _compile_tokens(text: str) -> list:
    pieces: list = []
    last = 0
    for match in TOKEN_RE.finditer(text):
        pieces += [text[last : match.start()], _Token(match.group(1))]
        last = match.end()
    pieces.append(text[last:])
    return [piece for piece in pieces if piece != ""]


def compile_template(template: str) -> tuple:
    """Split a per-forecast template once into text, placeholders and topic sections.

    Filling the pieces for a reader is then a join, not two regular-expression passes over
    the whole email: the send fills one per reader, thousands a minute.
    """
    pieces: list = []
    last = 0
    for match in SECTION_RE.finditer(template):
        pieces += _compile_tokens(template[last : match.start()])
        # Sections may hold sections ("In the sky" holds one per fact line).
        pieces.append(_Section(match.group(1), compile_template(match.group(2))))
        last = match.end()
    pieces += _compile_tokens(template[last:])
    return tuple(pieces)


def single_blank_lines(text: str) -> str:
    """Runs of blank lines (left where a reader's topic sections were) down to one; what
    re.sub(r"\n{3,}", "\n\n", text) does, several times faster per email."""
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


@dataclass(frozen=True)
class Flat:
    """A compiled template with one set of sections chosen: its text runs (joined) and
    placeholders in turn, and what bounds its lines' length in UTF-8 bytes once filled: the
    longest line's own text and the most placeholders on one line."""

    pieces: tuple  # str or _Token
    longest_line_text: int
    most_per_line: int

    def line_bound(self, longest_value: int) -> int:
        """No filled line is longer than this, if no value is longer than `longest_value` bytes
        (nor holds a line break)."""
        return self.longest_line_text + self.most_per_line * longest_value


def flatten(pieces: tuple, topics: set[str] | frozenset[str]) -> Flat:
    """Choose the sections once for many readers: filling the result is one join."""
    out: list = []

    def walk(pieces: tuple) -> None:
        for piece in pieces:
            if type(piece) is _Section:
                if piece.topic in topics:
                    walk(piece.pieces)
            elif type(piece) is str and out and type(out[-1]) is str:
                out[-1] += piece
            else:
                out.append(piece)

    walk(pieces)
    longest = most = line_text = line_tokens = 0
    for piece in out:
        if type(piece) is _Token:
            line_tokens += 1
            most = max(most, line_tokens)
            continue
        *ended, last = piece.split("\n")
        for line in ended:
            longest = max(longest, line_text + len(line.encode()))
            line_text, line_tokens = 0, 0
        line_text += len(last.encode())
    longest = max(longest, line_text)
    return Flat(tuple(out), longest, most)


def fill_flat(flat: Flat, values: dict[str, str]) -> str:
    """A flattened template with the reader's values."""
    return "".join([piece if type(piece) is str else values.get(piece.name, "") for piece in flat.pieces])


def fill_template(pieces: tuple, topics: set[str], values: dict[str, str]) -> str:
    """A compiled template with the reader's values, and only the sections of their topics."""
    return fill_flat(flatten(pieces, topics), values)
