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
class ForecastRequest:
    """Everything a generator writes from: the date, the sign, its facts (with ids), passages."""

    day: date
    sign: str
    facts: list[dict]
    passages: list[PassageDoc]


@dataclass
class Draft:
    """A written forecast, not yet checked."""

    headline: str
    overview: str
    sections: dict[str, str]
    facts_used: list[str] = field(default_factory=list)
    passages_used: list[str] = field(default_factory=list)
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
