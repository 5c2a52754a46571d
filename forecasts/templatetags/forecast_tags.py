"""Template helpers for showing a Forecast: its sections in topic order and its sky facts."""

from django import template

from forecasts.prompts import TOPIC_LABELS, TOPICS

register = template.Library()
FACTS_SHOWN = 8


@register.simple_tag(takes_context=True)
def forecast_sections(context, forecast) -> list[dict]:
    """[{topic, label, text}] in the usual topic order; only the context's `topics` (a list) when set."""
    topics = context.get("topics") or None
    sections = forecast.sections if isinstance(getattr(forecast, "sections", None), dict) else {}
    wanted = [topic for topic in TOPICS if not topics or topic in topics]
    return [
        {"topic": topic, "label": TOPIC_LABELS[topic], "text": str(sections[topic])}
        for topic in wanted
        if str(sections.get(topic) or "").strip()
    ]


@register.filter
def forecast_facts(forecast, limit=FACTS_SHOWN) -> list[str]:
    """Summaries of the facts the text was written from (times in UTC), most important first."""
    facts = [fact for fact in getattr(forecast, "facts", None) or [] if isinstance(fact, dict)]
    used = [fact for fact in facts if fact.get("used")]
    chosen = used or facts
    chosen = sorted(chosen, key=lambda fact: -(fact.get("rank") or 0))
    return [str(fact.get("summary") or "") for fact in chosen[: int(limit)] if fact.get("summary")]
