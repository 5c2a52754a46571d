"""OpenAI's Responses API as a forecast writer: structured output parsed into `ForecastOutput`.

One call per `generate()`: the SDK's own retries are off so forecasts/writing/generation.py can count
every call against its per-forecast budget (OPENAI_MAX_ATTEMPTS) and back off itself.
"""

import logging
from collections.abc import Sequence

from pydantic import BaseModel, Field

from forecasts.topics import TOPICS
from forecasts.writing.generators import Draft, ForecastRequest, GenerationError
from forecasts.writing.prompts import forecast_prompt, system_prompt

logger = logging.getLogger(__name__)


class ForecastSections(BaseModel):
    love: str = Field(description="At most 60 words on love only: partners, dating, friendship, family warmth.")
    career: str = Field(description="At most 60 words on career only: work, ambitions, colleagues, plans.")
    money: str = Field(description="At most 60 words on money only: earning, spending, saving, values.")
    health: str = Field(description="At most 60 words on health only: energy, body, rest, routines.")
    growth: str = Field(description="At most 60 words on growth only: learning, meaning, inner life.")


class ForecastOutput(BaseModel):
    """The JSON schema the model must answer in."""

    headline: str = Field(description="Names the day's story, under 70 characters.")
    overview: str = Field(description="The main reading: one story of 120-220 words, with time slots.")
    sections: ForecastSections
    do: str = Field(description="One short line of what to do, without the word 'Do'.")
    dont: str = Field(description="One short line of what to avoid, without the words 'Don't'.")
    facts_used: list[str] = Field(description="Ids of the sky facts the text relies on, e.g. f01.")


class OpenAIGenerator:
    """Writes forecasts with `client.responses.parse(..., text_format=ForecastOutput)`."""

    name = "openai"

    def __init__(self, *, model: str | None = None, timeout: float | None = None, client=None) -> None:
        from django.conf import settings

        self.model = model or settings.OPENAI_MODEL
        self.timeout = timeout if timeout is not None else settings.OPENAI_TIMEOUT
        self._client = client

    @property
    def client(self):
        """The SDK client, built on first use with a short timeout and no SDK retries."""
        if self._client is None:
            from forecasts.writing.clients import openai_client, secret

            if not secret("OPENAI_API_KEY"):
                raise GenerationError("OPENAI_API_KEY is not set", permanent=True)
            self._client = openai_client(timeout=self.timeout, max_retries=0)
        return self._client

    def generate(self, request: ForecastRequest, feedback: Sequence[str] = ()) -> Draft:
        import openai
        from pydantic import ValidationError

        try:
            response = self.client.responses.parse(
                model=self.model,
                instructions=system_prompt(),
                input=forecast_prompt(
                    request.sign, request.day, request.facts, request.passages, feedback, request.memory
                ),
                text_format=ForecastOutput,
                max_output_tokens=2500,
                timeout=self.timeout,
            )
        except (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError) as error:
            raise GenerationError(f"{type(error).__name__}: {error}") from error
        except openai.APIStatusError as error:
            # 5xx and 409 (conflict) may pass; other 4xx (bad key, bad request) will not.
            transient = error.status_code >= 500 or error.status_code in {408, 409}
            raise GenerationError(
                f"HTTP {error.status_code}: {error.message}"[:300], permanent=not transient
            ) from error
        except (ValidationError, ValueError) as error:
            raise GenerationError(f"the model's answer did not fit the schema: {error}"[:300]) from error
        except openai.OpenAIError as error:  # e.g. the answer was cut off at max_output_tokens
            raise GenerationError(f"{type(error).__name__}: {error}"[:300]) from error
        usage = getattr(response, "usage", None)
        input_tokens = getattr(usage, "input_tokens", 0) or 0
        output_tokens = getattr(usage, "output_tokens", 0) or 0
        parsed = response.output_parsed
        if parsed is None:
            raise GenerationError(
                "the model returned no forecast (refusal or empty output)",
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
        known = {fact.get("id") for fact in request.facts}
        return Draft(
            headline=parsed.headline.strip(),
            overview=parsed.overview.strip(),
            sections={topic: getattr(parsed.sections, topic).strip() for topic in TOPICS},
            advice={"do": parsed.do.strip(), "dont": parsed.dont.strip()},
            facts_used=[fact_id for fact_id in parsed.facts_used if fact_id in known],
            passages_used=[passage.key for passage in request.passages],
            model_name=getattr(response, "model", "") or self.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
