"""Template helpers for showing a Forecast: its sections in topic order and its sky facts."""

from django import template

from forecasts.sending.emails.facts import fact_lines, local_time_label

register = template.Library()


@register.simple_tag(takes_context=True)
def forecast_sections(context, forecast) -> list[dict]:
    """[{topic, label, text}] in the usual topic order; only the context's `topics` (a list) when set."""
    return forecast.sections_in_order(context.get("topics") or None)


@register.simple_tag
def forecast_facts(forecast, time_zone: str = "UTC") -> list[str]:
    """The sky facts the text was written from, most important first, times in `time_zone`.

    The same lines as the daily email shows (forecasts.sending.emails.facts.fact_lines).
    """
    return [
        line.render(lambda instant, nested: local_time_label(instant, time_zone, forecast.date, nested))
        for line in fact_lines(forecast.facts)
    ]
