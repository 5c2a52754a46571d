"""Writing the Forecast rows: sky facts -> passages -> a generator -> grounding -> the database.

Public services:
    forecasts_prepare(day)             the twelve forecasts of a date; idempotent, safe to run twice at once
    forecasts_prepare_days(first, n)   the same for n consecutive dates
    forecasts_missing(first, n)        the (date, sign) pairs still to write (the Celery task fans out on them)
    forecast_get_or_generate(day, sign)   the ready forecast, written now if nobody has (for the send path)
    forecast_regenerate(forecast)      write a forecast again (the admin action)
    forecast_write(request, generator) the generation loop without the database (pure apart from the generator)

One generation per (date, sign), whatever the number of readers or workers: a worker first
*claims* the row (get_or_create under the unique (date, sign) constraint, or a conditional UPDATE
taking over a failed row or a `generating` claim older than FORECAST_CLAIM_STALE_MINUTES), and
saves its result only if its claim still stands.

The generator is FORECAST_GENERATOR (a dotted path; empty: OpenAI when OPENAI_API_KEY is set,
else the offline composer). Each draft is checked by forecasts/writing/grounding.py. OpenAI gets at most
OPENAI_MAX_ATTEMPTS calls per forecast (errors retried with backoff, one regeneration with the
violations fed back); after that the offline composer writes it, and `generator=offline` with
`fallback_reason` says why. So a day costs at most 12 x OPENAI_MAX_ATTEMPTS model calls.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from forecasts.backoff import backoff_delay
from forecasts.models import Forecast, Passage
from forecasts.reading_cache import forecasts_changed
from forecasts.sending.holders import this_holder
from forecasts.topics import TOPICS
from forecasts.writing.clients import secret
from forecasts.writing.facts import body_name, facts_with_ids, forecast_window, sign_name, statable_facts
from forecasts.writing.generators import Draft, ForecastGenerator, ForecastRequest, GenerationError
from forecasts.writing.generators.offline import OfflineComposer
from forecasts.writing.grounding import check_forecast
from forecasts.writing.knowledge import PassageDoc
from forecasts.writing.memory import reading_memory
from forecasts.writing.prompts import PROMPT_VERSION, TOPIC_GUIDES
from forecasts.writing.retrieval import PassageIndex, retrieval_backend, search_with_fallback
from forecasts.zodiac import SIGN_SLUGS, SIGNS_BY_SLUG

logger = logging.getLogger(__name__)

OFFLINE_PATH = "forecasts.writing.generators.offline.OfflineComposer"
OPENAI_PATH = "forecasts.writing.generators.openai_responses.OpenAIGenerator"
LEAD_FACTS_FOR_RETRIEVAL = 8


# --- Facts and passages -------------------------------------------------------------------


def facts_for(day: date, sign: str) -> list[dict]:
    """The sign's transit facts over the forecast window of `day`, ranked, each with an id."""
    from forecasts.writing.transits import transits_for_sign

    start, end = forecast_window(day)
    return facts_with_ids(transits_for_sign(sign, start, end).facts)


@dataclass(frozen=True)
class PassageQuery:
    text: str
    filters: dict
    top_k: int = 1


def passage_queries(sign: str, facts: Sequence[dict]) -> list[PassageQuery]:
    """What to ask the index for one forecast: the sign, its leading facts, and each topic."""
    queries = [PassageQuery(f"{sign_name(sign)} nature strengths growth", {"kind": "sign_profile", "sign": sign})]
    statable = [f for f in statable_facts(facts) if f["kind"] not in ("moon_phase",)]
    whole_houses: dict[str, int] = {}
    for fact in statable:
        if fact["kind"] in ("body_in_sign", "moon_sign") and fact["bodies"][0] != "north_node":
            whole_houses[fact["bodies"][0]] = fact["house"]
    for fact in statable[:LEAD_FACTS_FOR_RETRIEVAL]:
        kind, bodies = fact["kind"], fact["bodies"]
        name = body_name(bodies[0]) if bodies else ""
        if kind in ("body_in_sign", "moon_sign") and bodies[0] != "north_node":
            filters = {"kind": "body_in_sign", "body": bodies[0], "sign": fact["sign"]}
            queries.append(PassageQuery(f"{name} in {sign_name(fact['sign'])}", filters))
            if fact.get("retrograde"):
                queries.append(PassageQuery(f"{name} retrograde review", {"kind": "retrograde", "body": bodies[0]}, 2))
        elif kind == "retrograde":
            queries.append(PassageQuery(f"{name} retrograde review", {"kind": "retrograde", "body": bodies[0]}, 2))
        elif kind == "station":
            queries.append(PassageQuery(f"{name} stations pause turn", {"kind": "retrograde", "body": bodies[0]}, 2))
        elif kind == "lunation":
            phase = (fact.get("phase") or "").replace("_", "-")
            keys = [f"lunation-{phase}-in-{fact['sign']}", f"lunation-{phase}"]
            queries.append(PassageQuery(phase.replace("-", " "), {"kind": "lunation", "key": keys}, 2))
        elif kind == "eclipse":
            element = SIGNS_BY_SLUG[fact["sign"]].element
            keys = [f"eclipse-{fact.get('eclipse')}-{element}", f"eclipse-{fact.get('eclipse')}"]
            queries.append(PassageQuery(f"{fact.get('eclipse')} eclipse", {"kind": "eclipse", "key": keys}, 2))
        elif kind == "aspect":
            family = {"sextile": "trine", "opposition": "square"}.get(fact["aspect"], fact["aspect"])
            filters = {"kind": "aspect", "body": list(bodies), "other_body": list(bodies), "aspect": family}
            queries.append(PassageQuery(f"{body_name(bodies[0])} {fact['aspect']} {body_name(bodies[1])}", filters))
    keys = [f"body-house-{body}-{house}" for body, house in whole_houses.items()]
    if keys:
        for topic in TOPICS:
            filters = {"kind": "body_in_house", "topics": topic, "key": keys}
            queries.append(PassageQuery(f"{topic} {TOPIC_GUIDES[topic]}", filters, 2))
    return queries


def passages_retrieve(
    sign: str,
    facts: Sequence[dict],
    index: PassageIndex | None = None,
    resolve: Callable[[list[str]], list[PassageDoc]] | None = None,
) -> tuple[list[PassageDoc], str]:
    """The passages for one forecast, in query order, and a note if the index had to fall back."""
    index = index or retrieval_backend()
    keys: list[str] = []
    notes: list[str] = []
    for query in passage_queries(sign, facts):
        hits, note = search_with_fallback(index, query.text, query.filters, query.top_k)
        if note and note not in notes:
            notes.append(note)
        keys.extend(hit.key for hit in hits if hit.key not in keys)
    docs = (resolve or _passages_from_db)(keys)
    order = {key: position for position, key in enumerate(keys)}
    return sorted(docs, key=lambda doc: order[doc.key]), "; ".join(notes)


def _passages_from_db(keys: list[str]) -> list[PassageDoc]:
    # Keys the index returns but the table no longer has (removed passages) are dropped here.
    return [PassageDoc.from_model(p) for p in Passage.objects.filter(key__in=keys)]


# --- Generators and the generation loop ---------------------------------------------------


def generator_path() -> str:
    """The dotted path of the configured generator (see the module docstring)."""
    configured = getattr(settings, "FORECAST_GENERATOR", "")
    if configured:
        return configured
    return OPENAI_PATH if secret("OPENAI_API_KEY") else OFFLINE_PATH


def forecast_generator(path: str | None = None) -> ForecastGenerator:
    return import_string(path or generator_path())()


@dataclass
class Outcome:
    """A checked draft and how it came to be."""

    draft: Draft
    generator: str
    grounded: bool
    attempts: int
    fallback_reason: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    violations: list[str] = field(default_factory=list)


def draft_problems(draft: Draft) -> list[str]:
    """What makes a draft unusable besides its sky claims: missing or empty parts."""
    problems = []
    if not draft.headline.strip():
        problems.append("the headline is empty")
    if len(draft.overview.split()) < 20:
        problems.append("the overview is missing or too short")
    problems.extend(
        f"the {topic} section is missing or too short"
        for topic in TOPICS
        if len(draft.sections.get(topic, "").split()) < 5
    )
    return problems


def forecast_write(
    request: ForecastRequest,
    generator: ForecastGenerator,
    *,
    max_attempts: int | None = None,
    backoff: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Write and check one forecast; fall back to the offline composer (see the module docstring)."""
    max_attempts = settings.OPENAI_MAX_ATTEMPTS if max_attempts is None else max_attempts
    backoff = settings.OPENAI_BACKOFF if backoff is None else backoff
    reasons: list[str] = []
    input_tokens = output_tokens = calls = failures = 0
    feedback: list[str] = []
    regenerated = False
    if generator.name != OfflineComposer.name:
        while calls < max_attempts:
            calls += 1
            try:
                draft = generator.generate(request, feedback)
            except GenerationError as error:
                input_tokens += error.input_tokens
                output_tokens += error.output_tokens
                reasons.append(f"call {calls}: {error}")
                if error.permanent:
                    break
                failures += 1
                if calls < max_attempts:
                    # Exponential backoff with jitter, so many workers do not retry in step.
                    sleep(backoff_delay(failures - 1, backoff, spread=(0.5, 1.5)))
                continue
            input_tokens += draft.input_tokens
            output_tokens += draft.output_tokens
            violations = check_forecast(
                draft.headline, draft.overview, draft.sections, request.facts, request.sign, draft.advice
            )
            listed = [str(v) for v in violations] + draft_problems(draft)
            if not listed:
                return Outcome(draft, generator.name, True, calls, "", input_tokens, output_tokens, calls)
            reasons.append(f"call {calls}: not grounded: " + "; ".join(listed[:5]))
            if regenerated:
                break
            regenerated, feedback = True, listed
    composer = OfflineComposer()
    draft = composer.generate(request)
    violations = check_forecast(
        draft.headline, draft.overview, draft.sections, request.facts, request.sign, draft.advice
    )
    if violations:
        logger.error("Offline forecast for %s %s is not grounded: %s", request.sign, request.day, violations)
    reason = ""
    if generator.name != OfflineComposer.name:
        reason = f"{generator.name} gave no grounded forecast after {calls} call(s): " + " | ".join(reasons)
    return Outcome(
        draft=draft,
        generator=OfflineComposer.name,
        grounded=not violations,
        attempts=calls + 1,
        fallback_reason=reason,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model_calls=calls,
        violations=[str(v) for v in violations],
    )


# --- Claims and the Forecast rows ---------------------------------------------------------


def forecast_claim(day: date, sign: str, *, force: bool = False) -> Forecast | None:
    """Claim (date, sign) for generation; the claimed row, or None if someone else has it or it is done.

    Takes over a failed row, or a `generating` one whose claim is stale; `force` claims any row
    (regeneration). The claim is the row's `claimed_at`: only the holder of the newest one saves.
    """
    now = timezone.now()
    # The holder is named so a lost worker's claim is released at once (forecasts/sending/recovery.py).
    holder = this_holder()
    forecast, created = Forecast.objects.get_or_create(
        date=day, sign=sign, defaults={"status": Forecast.Status.GENERATING, "claimed_at": now, "claimed_by": holder}
    )
    if created:
        return forecast
    stale = now - timedelta(minutes=settings.FORECAST_CLAIM_STALE_MINUTES)
    rows = Forecast.objects.filter(pk=forecast.pk)
    if not force:
        rows = rows.filter(
            Q(status=Forecast.Status.FAILED)
            | Q(status=Forecast.Status.GENERATING) & (Q(claimed_at__lt=stale) | Q(claimed_at__isnull=True))
        )
    if rows.update(status=Forecast.Status.GENERATING, claimed_at=now, claimed_by=holder) != 1:
        return None
    forecasts_changed([sign])  # a ready row claimed again (regeneration) leaves the pages
    forecast.refresh_from_db()
    return forecast


def forecast_generate(forecast: Forecast, generator: ForecastGenerator | None = None, note: str = "") -> Forecast:
    """Write a claimed forecast and save it if the claim still stands; returns the row as stored.

    `note` is kept in fallback_reason, to say why this forecast was written the way it was.
    """
    claim = forecast.claimed_at
    day, sign = forecast.date, forecast.sign
    try:
        facts = facts_for(day, sign)
        generator = generator or forecast_generator()
        # The offline composer writes from its phrasebook: passages are retrieved for a model.
        passages, retrieval_note = [], ""
        if generator.name != OfflineComposer.name:
            passages, retrieval_note = passages_retrieve(sign, facts)
        memory = reading_memory(day, sign)
        request = ForecastRequest(day=day, sign=sign, facts=facts, passages=passages, memory=memory)
        outcome = forecast_write(request, generator)
    except Exception as error:
        logger.exception("Forecast %s %s could not be written", sign, day)
        Forecast.objects.filter(pk=forecast.pk, claimed_at=claim).update(
            status=Forecast.Status.FAILED, fallback_reason=f"{type(error).__name__}: {error}"[:2000]
        )
        forecast.refresh_from_db()
        return forecast
    used = set(outcome.draft.facts_used)
    stored_facts = [{**fact, "used": fact["id"] in used} for fact in facts]
    reasons = [
        reason
        for reason in (note, outcome.fallback_reason, retrieval_note and f"retrieval: {retrieval_note}")
        if reason
    ]
    by_key = {p.key: p.pk for p in Passage.objects.filter(key__in=outcome.draft.passages_used)}
    with transaction.atomic():
        saved = Forecast.objects.filter(pk=forecast.pk, status=Forecast.Status.GENERATING, claimed_at=claim).update(
            status=Forecast.Status.DRAFT,
            headline=outcome.draft.headline[:200],
            overview=outcome.draft.overview,
            sections=outcome.draft.sections,
            advice=outcome.draft.advice,
            phrasings=outcome.draft.phrasings,
            facts=stored_facts,
            generator=outcome.generator,
            model_name=outcome.draft.model_name[:100],
            prompt_version=PROMPT_VERSION,
            fallback_reason="\n".join(reasons),
            grounded=outcome.grounded,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            attempts=outcome.attempts,
            edited_by=None,
            edited_at=None,
            updated_at=timezone.now(),
        )
        if saved:
            forecast.passages.set([by_key[key] for key in outcome.draft.passages_used if key in by_key])
    if saved:
        forecasts_changed([sign])  # QuerySet.update sends no signal: the pages are told here
    else:
        logger.warning("Forecast %s %s was claimed by another worker meanwhile; result dropped", sign, day)
    forecast.refresh_from_db()
    return forecast


@dataclass
class PrepareResult:
    day: date
    generated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "date": self.day.isoformat(),
            "generated": self.generated,
            "skipped": self.skipped,
            "failed": self.failed,
        }


def forecasts_prepare(day: date, *, generator_path: str | None = None) -> PrepareResult:
    """Make sure all twelve forecasts of `day` exist; writes only those nobody has written or claimed.

    `generator_path` overrides FORECAST_GENERATOR (site_prepare uses the offline composer).
    """
    result = PrepareResult(day)
    ready = set(Forecast.objects.ready().filter(date=day).values_list("sign", flat=True))
    generator = None
    for sign in SIGN_SLUGS:
        claimed = None if sign in ready else forecast_claim(day, sign)
        if claimed is None:
            result.skipped.append(sign)
            continue
        generator = generator or forecast_generator(generator_path)
        forecast = forecast_generate(claimed, generator)
        (result.generated if forecast.is_ready else result.failed).append(sign)
    return result


def forecasts_prepare_days(first: date, days: int = 1, *, generator_path: str | None = None) -> list[PrepareResult]:
    """`forecasts_prepare` for `days` consecutive dates from `first`."""
    return [forecasts_prepare(first + timedelta(days=n), generator_path=generator_path) for n in range(days)]


def forecasts_missing(first: date, days: int = 1) -> list[tuple[date, str]]:
    """(date, sign) pairs in `days` dates from `first` that have no ready forecast (one query)."""
    dates = [first + timedelta(days=n) for n in range(days)]
    ready = set(Forecast.objects.ready().filter(date__in=dates).values_list("date", "sign"))
    return [(day, sign) for day in dates for sign in SIGN_SLUGS if (day, sign) not in ready]


def forecast_get_or_generate(
    day: date, sign: str, *, wait: float | None = None, generator: ForecastGenerator | None = None, note: str = ""
) -> Forecast | None:
    """The ready forecast for (date, sign), written now if nobody has; None if still not ready.

    If another worker holds a fresh claim, waits up to `wait` seconds (FORECAST_WAIT_SECONDS)
    for it to finish rather than writing the same forecast twice. `generator` and `note` go to
    forecast_generate when this call writes it.
    """
    forecast = Forecast.objects.ready().filter(date=day, sign=sign).first()
    if forecast:
        return forecast
    claimed = forecast_claim(day, sign)
    if claimed is not None:
        forecast = forecast_generate(claimed, generator, note)
        return forecast if forecast.is_ready else None
    wait = settings.FORECAST_WAIT_SECONDS if wait is None else wait
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(min(0.5, max(deadline - time.monotonic(), 0)))
        forecast = Forecast.objects.ready().filter(date=day, sign=sign).first()
        if forecast:
            return forecast
    return None


def forecast_regenerate(forecast: Forecast) -> Forecast:
    """Write a forecast again from scratch (it replaces any edit); returns the row as stored."""
    claimed = forecast_claim(forecast.date, forecast.sign, force=True)
    return forecast_generate(claimed) if claimed else forecast
