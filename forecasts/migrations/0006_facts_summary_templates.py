"""Facts stored before transits.py wrote summary_template and instants get them, read once from the summary.

Until now the email and the pages read each "14:32 UTC on 9 Mar" back out of such a fact's
summary on every render, taking the year that puts it nearest the forecast's date. This does the
same reading once, so the renderers only ever need summary_template and instants. Summaries are
left as they are, so there is nothing to undo.
"""

import re
from datetime import UTC, date, datetime, time

from django.db import migrations

# How transits.py wrote an instant into a summary before it kept instants apart.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CLOCK_RE = re.compile(r"\b([01]\d|2[0-3]):([0-5]\d) UTC on (\d{1,2}) (" + "|".join(MONTHS) + r")\b")


def clock_instant(match: re.Match, reference: date) -> datetime | None:
    """The instant a "14:32 UTC on 9 Mar" names, in the year that puts it nearest `reference`."""
    hour, minute, day, month = int(match[1]), int(match[2]), int(match[3]), MONTHS.index(match[4]) + 1
    candidates = []
    for year in (reference.year - 1, reference.year, reference.year + 1):
        try:
            candidates.append(datetime(year, month, day, hour, minute, tzinfo=UTC))
        except ValueError:
            continue
    noon = datetime.combine(reference, time(12, 0), tzinfo=UTC)
    return min(candidates, key=lambda when: abs(when - noon)) if candidates else None


def fact_with_instants(fact, reference: date):
    """`fact` with summary_template and instants read from its summary; unchanged if it has
    either already, or has no summary (the renderers compose a plain line for those)."""
    if not isinstance(fact, dict) or fact.get("summary_template") is not None or fact.get("instants") is not None:
        return fact
    text = str(fact.get("summary") or "").strip()
    if not text:
        return fact
    pieces: list[str] = []
    instants: list[str] = []
    last = 0
    for match in CLOCK_RE.finditer(text):
        instant = clock_instant(match, reference)
        if instant is None:
            continue
        pieces += [text[last : match.start()].replace("{", "{{").replace("}", "}}"), "{%d}" % len(instants)]
        instants.append(instant.isoformat())
        last = match.end()
    pieces.append(text[last:].replace("{", "{{").replace("}", "}}"))
    return {**fact, "summary_template": "".join(pieces), "instants": instants}


def add_summary_templates(apps, schema_editor):
    Forecast = apps.get_model("forecasts", "Forecast")
    changed = []
    for forecast in Forecast.objects.only("id", "date", "facts").iterator(chunk_size=500):
        if not isinstance(forecast.facts, list):
            continue
        facts = [fact_with_instants(fact, forecast.date) for fact in forecast.facts]
        if facts != forecast.facts:
            forecast.facts = facts
            changed.append(forecast)
    Forecast.objects.bulk_update(changed, ["facts"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("forecasts", "0005_delivery_subscription_index_in_unique")]

    operations = [migrations.RunPython(add_summary_templates, migrations.RunPython.noop)]
