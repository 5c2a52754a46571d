"""Writing forecasts: OpenAI against a local Responses API server, the offline twin, and the claims."""

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import Subscription
from accounts.tests.factories import SubscriptionFactory
from forecasts.models import Forecast
from forecasts.tasks import forecasts_prepare_task
from forecasts.tests.writing.answers import EMPTY_ANSWER, FALSE_ANSWER, grounded_answer
from forecasts.tests.writing.conftest import OPENAI_PATH
from forecasts.writing.generation import (
    facts_for,
    forecast_claim,
    forecast_generate,
    forecast_get_or_generate,
    forecast_regenerate,
    forecasts_missing,
    forecasts_prepare,
)
from forecasts.writing.grounding import check_forecast
from forecasts.writing.phrasebook import phrasebook
from forecasts.writing.prompts import PROMPT_VERSION
from forecasts.writing.sky_truth import sky_truth
from forecasts.zodiac import SIGN_SLUGS
from tests.support.concurrency import at_once

# 20 June 2025: Mercury direct, Venus in Taurus, no full moon (checked below).
DAY = date(2025, 6, 20)


def test_the_test_day_has_the_sky_the_false_answer_contradicts():
    truth = sky_truth(facts_for(DAY, "leo"), "leo")
    assert "mercury" in truth.direct_whole
    assert truth.whole_sign["venus"] == "taurus"
    assert not truth.lunations


@pytest.mark.django_db
def test_openai_writes_a_grounded_forecast_and_records_how(kb, openai_settings, fake_openai):
    fake_openai.default = grounded_answer
    forecast = forecast_get_or_generate(DAY, "leo")
    assert forecast is not None and forecast.is_ready
    assert forecast.generator == Forecast.Generator.OPENAI
    assert forecast.grounded and forecast.fallback_reason == ""
    assert forecast.prompt_version == PROMPT_VERSION
    assert (forecast.input_tokens, forecast.output_tokens) == (321, 123)
    assert forecast.attempts == 1 and fake_openai.call_count == 1
    assert forecast.passages.count() > 5
    assert forecast.advice == {"do": grounded_answer({})["do"], "dont": grounded_answer({})["dont"]}
    assert any(fact["used"] for fact in forecast.facts) and all("id" in fact for fact in forecast.facts)
    request = fake_openai.calls[0]
    assert request.body["model"] == openai_settings.OPENAI_MODEL
    assert request.body["text"]["format"]["type"] == "json_schema"
    assert "Daily Forecast for Leo" in request.body["input"]
    assert request.headers.get("authorization", "").startswith("Bearer sk-test-")
    # Only statable facts are offered: the Moon's changing sign is not a state, only an event with
    # its time slot; the sign's recent headlines and openings are listed to avoid.
    assert "[STATE] The Moon is in" not in request.body["input"]
    assert "[EVENT [[at:" in request.body["input"] and "Recent headlines for Leo" in request.body["input"]
    assert set(request.body["text"]["format"]["schema"]["properties"]) >= {"headline", "overview", "do", "dont"}


@pytest.mark.django_db
def test_the_sign_remembers_its_recent_readings_in_the_database(kb, settings, fake_openai, openai_settings):
    settings.FORECAST_GENERATOR = "forecasts.writing.generators.offline.OfflineComposer"
    forecasts_prepare(DAY)
    yesterday = Forecast.objects.get(date=DAY, sign="leo")
    assert len(yesterday.phrasings) > 10 and yesterday.passages.count() == 0  # the phrasebook, no passages
    forecasts_prepare(DAY + timedelta(days=1))
    today = Forecast.objects.get(date=DAY + timedelta(days=1), sign="leo")
    # Fact sentences may share a shape; every interpretation, note and line of advice is new.
    assert len(set(today.phrasings) & set(yesterday.phrasings)) <= 2
    assert today.headline != yesterday.headline
    # Nor does another sign have the same words that date (fact sentences differ by life area).
    book = phrasebook()
    words = {p for p in today.phrasings if book.by_id[p].family != "fact"}
    for other in Forecast.objects.filter(date=DAY + timedelta(days=1)).exclude(sign="leo"):
        assert len(words & set(other.phrasings)) <= 1, other.sign

    # The OpenAI path is told the same memory: the sign's recent headline and opening.
    settings.FORECAST_GENERATOR = OPENAI_PATH
    fake_openai.default = grounded_answer
    forecast_get_or_generate(DAY + timedelta(days=2), "leo")
    prompt = fake_openai.calls[0].body["input"]
    assert f"- {today.headline}" in prompt and f"- {yesterday.headline}" in prompt


@pytest.mark.django_db
def test_a_false_sky_is_caught_regenerated_once_then_written_offline(kb, openai_settings, fake_openai):
    fake_openai.default = lambda body: FALSE_ANSWER
    forecast = forecast_get_or_generate(DAY, "leo")
    assert fake_openai.call_count == 2  # the first answer and one regeneration
    second_prompt = fake_openai.calls[1].body["input"]
    assert "previous draft stated things the sky facts do not support" in second_prompt
    assert "Mercury is not retrograde" in second_prompt
    assert forecast.generator == Forecast.Generator.OFFLINE
    assert forecast.grounded
    assert "not grounded" in forecast.fallback_reason and "Venus is not in Aries" in forecast.fallback_reason
    text = " ".join([forecast.headline, forecast.overview, *forecast.sections.values()]).lower()
    for false_claim in ("mercury retrograde", "venus in aries", "full moon"):
        assert false_claim not in text
    assert check_forecast(forecast.headline, forecast.overview, forecast.sections, forecast.facts, "leo") == []
    # The model's tokens are still counted: they were spent.
    assert forecast.input_tokens == 2 * 321


@pytest.mark.django_db
def test_an_empty_answer_is_not_a_forecast(kb, openai_settings, fake_openai):
    fake_openai.default = lambda body: EMPTY_ANSWER
    forecast = forecast_get_or_generate(DAY, "cancer")
    assert fake_openai.call_count == 2
    assert forecast.generator == Forecast.Generator.OFFLINE and "overview is missing" in forecast.fallback_reason
    assert len(forecast.overview.split()) > 40


@pytest.mark.django_db
def test_a_regenerated_answer_that_is_grounded_is_kept(kb, openai_settings, fake_openai):
    fake_openai.queue(FALSE_ANSWER)
    fake_openai.default = grounded_answer
    forecast = forecast_get_or_generate(DAY, "virgo")
    assert fake_openai.call_count == 2
    assert forecast.generator == Forecast.Generator.OPENAI and forecast.attempts == 2


@pytest.mark.django_db
@pytest.mark.parametrize("status", [500, 429])
def test_server_errors_are_retried_with_backoff_then_the_offline_composer_takes_over(
    kb, openai_settings, fake_openai, status
):
    fake_openai.default = None
    for _ in range(3):
        fake_openai.queue(status=status)
    forecast = forecast_get_or_generate(DAY, "aries")
    assert fake_openai.call_count == 3  # OPENAI_MAX_ATTEMPTS, no SDK retries on top
    assert forecast.generator == Forecast.Generator.OFFLINE and forecast.grounded
    assert f"call 3: HTTP {status}" in forecast.fallback_reason or "RateLimitError" in forecast.fallback_reason


@pytest.mark.django_db
def test_a_hanging_server_times_out_quickly(kb, openai_settings, fake_openai):
    openai_settings.OPENAI_TIMEOUT = 0.3
    openai_settings.OPENAI_MAX_ATTEMPTS = 2
    fake_openai.queue(hang=5)
    fake_openai.queue(hang=5)
    started = timezone.now()
    forecast = forecast_get_or_generate(DAY, "taurus")
    assert (timezone.now() - started).total_seconds() < 4
    assert forecast.generator == Forecast.Generator.OFFLINE
    assert "APITimeoutError" in forecast.fallback_reason


@pytest.mark.django_db
def test_a_rejected_key_is_not_retried(kb, openai_settings, fake_openai):
    fake_openai.queue(status=401)
    forecast = forecast_get_or_generate(DAY, "gemini")
    assert fake_openai.call_count == 1
    assert forecast.generator == Forecast.Generator.OFFLINE and "HTTP 401" in forecast.fallback_reason


@pytest.mark.django_db
def test_llm_calls_per_day_are_bounded_whatever_the_number_of_readers(kb, openai_settings, fake_openai):
    openai_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast readers
    for index in range(120):
        SubscriptionFactory(sign=SIGN_SLUGS[index % 12])
    fake_openai.default = None  # every call fails: the worst case for the number of calls
    forecasts_prepare(DAY)
    for subscription in Subscription.objects.all():
        assert forecast_get_or_generate(DAY, subscription.sign) is not None
    assert forecasts_prepare(DAY).generated == []
    assert fake_openai.call_count == 12 * 3
    assert Forecast.objects.filter(date=DAY).count() == 12


@pytest.mark.django_db
def test_prepare_is_idempotent_and_leaves_edits_alone(kb, settings):
    settings.FORECAST_GENERATOR = "forecasts.writing.generators.offline.OfflineComposer"
    first = forecasts_prepare(DAY)
    assert sorted(first.generated) == sorted(SIGN_SLUGS)
    Forecast.objects.filter(date=DAY, sign="leo").update(headline="Edited by a person")
    second = forecasts_prepare(DAY)
    assert second.generated == [] and sorted(second.skipped) == sorted(SIGN_SLUGS)
    assert Forecast.objects.get(date=DAY, sign="leo").headline == "Edited by a person"


@pytest.mark.django_db
def test_a_stale_claim_is_taken_over_and_a_fresh_one_is_not(kb, settings):
    settings.FORECAST_GENERATOR = "forecasts.writing.generators.offline.OfflineComposer"
    claimed = forecast_claim(DAY, "libra")
    assert claimed is not None and claimed.status == Forecast.Status.GENERATING
    assert forecast_claim(DAY, "libra") is None  # someone is writing it
    assert forecast_get_or_generate(DAY, "libra", wait=0.2) is None
    stale = timezone.now() - timedelta(minutes=settings.FORECAST_CLAIM_STALE_MINUTES + 1)
    Forecast.objects.filter(pk=claimed.pk).update(claimed_at=stale)
    forecast = forecast_get_or_generate(DAY, "libra")
    assert forecast is not None and forecast.is_ready
    # The first worker's late result is dropped: its claim no longer stands.
    claimed.claimed_at = stale - timedelta(seconds=1)
    forecast_generate(claimed)
    assert Forecast.objects.get(pk=forecast.pk).updated_at == forecast.updated_at


@pytest.mark.django_db
def test_regenerate_replaces_an_edit(kb, settings):
    settings.FORECAST_GENERATOR = "forecasts.writing.generators.offline.OfflineComposer"
    forecast = forecast_get_or_generate(DAY, "pisces")
    Forecast.objects.filter(pk=forecast.pk).update(headline="Edited", status=Forecast.Status.APPROVED)
    again = forecast_regenerate(Forecast.objects.get(pk=forecast.pk))
    assert again.headline != "Edited" and again.status == Forecast.Status.DRAFT
    assert again.headline == forecast.headline  # the composer is deterministic per (date, sign)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_prepare_runs_write_twelve_forecasts_with_at_most_twelve_generations(
    kb, openai_settings, fake_openai
):
    def slow_answer(body):
        threading.Event().wait(0.05)  # keep both runs busy at the same time
        return grounded_answer(body)

    fake_openai.default = slow_answer

    at_once(lambda: forecasts_prepare(DAY))

    assert Forecast.objects.filter(date=DAY).count() == 12
    assert Forecast.objects.filter(date=DAY, status=Forecast.Status.DRAFT).count() == 12
    assert fake_openai.call_count <= 12
    assert sorted(Forecast.objects.filter(date=DAY).values_list("sign", flat=True)) == sorted(SIGN_SLUGS)


@pytest.mark.django_db
def test_the_beat_task_queues_one_task_per_missing_forecast(kb, settings):
    from horoscope_site.celery import app

    settings.FORECAST_GENERATOR = "forecasts.writing.generators.offline.OfflineComposer"
    # Frozen at 20:00 UTC, when the dates on Earth are today (from UTC-12) and tomorrow (UTC+14).
    with time_machine.travel(datetime(2026, 12, 5, 20, 0, tzinfo=UTC), tick=False):
        today = timezone.now().date()
        forecast_get_or_generate(today, "leo")
        app.conf.task_always_eager = True
        try:
            result = forecasts_prepare_task.delay(days_ahead=1).get()
        finally:
            app.conf.task_always_eager = False
    assert len(result["queued"]) == 23  # two dates, minus the one already written
    assert Forecast.objects.filter(date__in=[today, today + timedelta(days=1)], status="draft").count() == 24
    assert forecasts_missing(today, 2) == []
