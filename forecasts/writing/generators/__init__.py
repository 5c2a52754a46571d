"""Forecast writers behind one interface: OpenAI (Responses API) and the offline composer.

    generator = OfflineComposer()        # or OpenAIGenerator()
    draft = generator.generate(ForecastRequest(day, sign, facts, passages), feedback=[...])

`feedback` lists what a previous draft got wrong (from forecasts/writing/grounding.py); a generator
that cannot use it (the composer, grounded by construction) ignores it. forecasts/writing/generation.py
picks the generator (`FORECAST_GENERATOR`), checks every draft and falls back to the composer.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from forecasts.writing.knowledge import PassageDoc


@dataclass(frozen=True)
class ReadingMemory:
    """What a sign has read lately, so a new reading repeats none of it.

    `recent`: phrasing id -> how many days ago the sign last had it (its last 30 readings);
    `today`: phrasing ids other signs already have for the same date; `headlines` and
    `openings`: the sign's recent headlines and first sentences, newest first (the OpenAI
    prompt lists them to avoid); `today_headlines`: other signs' headlines for the date;
    `counts`: how often every sign together used each phrasing in the window, so the composer
    spreads its library evenly instead of wearing out a few favourites.
    """

    recent: dict[str, int] = field(default_factory=dict)
    today: frozenset[str] = frozenset()
    headlines: tuple[str, ...] = ()
    openings: tuple[str, ...] = ()
    today_headlines: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ForecastRequest:
    """Everything a generator writes from: the date, the sign, its facts (with ids), passages,
    and the sign's memory of recent readings."""

    day: date
    sign: str
    facts: list[dict]
    passages: list[PassageDoc]
    memory: ReadingMemory = field(default_factory=ReadingMemory)


@dataclass
class Draft:
    """A written forecast, not yet checked."""

    headline: str
    overview: str  # the main reading: one story, 120-220 words, time slots for local timing
    sections: dict[str, str]  # topic -> a short note (at most 60 words) on that topic only
    advice: dict[str, str] = field(default_factory=dict)  # the optional {"do": ..., "dont": ...}
    facts_used: list[str] = field(default_factory=list)
    passages_used: list[str] = field(default_factory=list)
    phrasings: list[str] = field(default_factory=list)  # phrasebook ids (the offline composer)
    model_name: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


class GenerationError(Exception):
    """A generator could not write a draft; `permanent` means retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False, input_tokens: int = 0, output_tokens: int = 0):
        super().__init__(message)
        self.permanent = permanent
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


class ForecastGenerator(Protocol):
    name: str  # a Forecast.Generator value

    def generate(self, request: ForecastRequest, feedback: Sequence[str] = ()) -> Draft:
        """Write one forecast; raise GenerationError on failure."""
