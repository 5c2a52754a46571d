"""Forecast preparation for one day: the twelve forecasts, and how many LLM calls they cost.

- the offline composer (the embedded default): `forecasts_prepare(day)` timed, first in this
  process (it loads the knowledge base's local index) and again for the next day;
- OpenAI through the real SDK, pointed at a local fake server (devtools/fake_openai.py)
  that answers with grounded text (the offline composer's own forecast for that sign and day,
  as the model's structured output): the number of model calls for the day, expected 12;
- the worst case, every call failing: the calls stay within 12 x OPENAI_MAX_ATTEMPTS, and the
  offline composer still writes all twelve.
"""

import re
import secrets
import time
from datetime import date, timedelta

DAY = date(2025, 3, 14)
OPENAI_PATH = "forecasts.writing.generators.openai_responses.OpenAIGenerator"
PROMPT_SIGN = re.compile(r"Daily Forecast for (\w+) \(")


def _answers(day: date) -> dict[str, dict]:
    """The offline composer's forecasts of `day`, as the model's structured output, by sign name."""
    from forecasts.models import Forecast
    from forecasts.zodiac import SIGNS_BY_SLUG

    answers = {}
    for forecast in Forecast.objects.filter(date=day):
        answers[SIGNS_BY_SLUG[forecast.sign].name] = {
            "headline": forecast.headline,
            "overview": forecast.overview,
            "sections": dict(forecast.sections),
            "do": forecast.advice.get("do", ""),
            "dont": forecast.advice.get("dont", ""),
            "facts_used": [fact["id"] for fact in forecast.facts if fact.get("used")],
        }
    return answers


def _prepare_with_fake_openai(day: date, answer) -> tuple[dict, float]:
    """Delete `day`'s forecasts, prepare them again through the OpenAI generator; (figures, seconds)."""
    from django.conf import settings

    from devtools.fake_openai import FakeOpenAI
    from forecasts.models import Forecast
    from forecasts.writing.generation import forecasts_prepare

    Forecast.objects.filter(date=day).delete()
    saved = {
        name: getattr(settings, name)
        for name in ("FORECAST_GENERATOR", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_TIMEOUT", "OPENAI_BACKOFF")
    }
    with FakeOpenAI() as fake:
        fake.default = answer
        settings.FORECAST_GENERATOR = OPENAI_PATH
        settings.OPENAI_API_KEY = "sk-bench-" + secrets.token_hex(12)  # a dummy: the fake checks nothing
        settings.OPENAI_BASE_URL = fake.base_url
        settings.OPENAI_TIMEOUT = 5.0
        settings.OPENAI_BACKOFF = 0.01
        try:
            began = time.perf_counter()
            result = forecasts_prepare(day)
            seconds = time.perf_counter() - began
        finally:
            for name, value in saved.items():
                setattr(settings, name, value)
        forecasts = list(Forecast.objects.filter(date=day))
        return {
            "calls": fake.call_count,
            "generated": len(result.generated),
            "by_openai": sum(1 for f in forecasts if f.generator == "openai"),
            "grounded": sum(1 for f in forecasts if f.grounded),
        }, seconds


def run() -> dict:
    from benchmarks import support

    support.environment()
    support.use_database("bench_prepare")
    from django.conf import settings

    from forecasts.writing.generation import OFFLINE_PATH, forecasts_prepare
    from forecasts.writing.knowledge import knowledge_load

    settings.RETRIEVAL_BACKEND = "forecasts.writing.retrieval.LocalIndex"
    began = time.perf_counter()
    knowledge_load()
    knowledge_s = time.perf_counter() - began

    timings = []
    for day in (DAY, DAY + timedelta(days=1)):
        began = time.perf_counter()
        result = forecasts_prepare(day, generator_path=OFFLINE_PATH)
        timings.append(time.perf_counter() - began)
        if len(result.generated) != 12:
            raise RuntimeError(f"the offline composer wrote {len(result.generated)} forecasts for {day}")

    answers = _answers(DAY)

    def grounded(body: dict) -> dict | None:
        match = PROMPT_SIGN.search(body.get("input") or "")
        return answers.get(match.group(1)) if match else None

    llm, llm_s = _prepare_with_fake_openai(DAY, grounded)
    worst, _ = _prepare_with_fake_openai(DAY, lambda body: None)  # every call answered 500
    budget = 12 * settings.OPENAI_MAX_ATTEMPTS
    return {
        "day": DAY.isoformat(),
        "knowledge_load_s": support.rounded(knowledge_s, 2),
        "offline_day_s": support.rounded(timings[0], 2),
        "offline_next_day_s": support.rounded(timings[1], 2),
        "offline_per_forecast_ms": support.rounded(timings[1] / 12 * 1000),
        "llm_calls_grounded_day": llm["calls"],
        "llm_forecasts_by_openai": llm["by_openai"],
        "llm_day_s_fake_server": support.rounded(llm_s, 2),
        "llm_calls_all_failing_day": worst["calls"],
        "llm_all_failing_written_offline": worst["generated"],
        "llm_call_budget": budget,
        "meets_calls": llm["calls"] == 12 and llm["by_openai"] == 12 and worst["calls"] <= budget,
    }
