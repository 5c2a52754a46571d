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


def fill_template(pieces: tuple, topics: set[str], values: dict[str, str]) -> str:
    """A compiled template with the reader's values, and only the sections of their topics."""
    out: list[str] = []

    def fill(pieces: tuple) -> None:
        for piece in pieces:
            if type(piece) is str:
                out.append(piece)
            elif type(piece) is _Token:
                out.append(values.get(piece.name, ""))
            elif piece.topic in topics:
                fill(piece.pieces)

    fill(pieces)
    return "".join(out)
