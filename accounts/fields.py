"""The time-zone picker: a text box that finds zones by city, with a list of suggestions.

It works with no script at all (the browser's own <datalist> suggests while typing, and the
server reads a city, a label or a zone name); static/js/timezone.js only fills in the
browser's zone on a new form.
"""

from datetime import UTC, datetime
from functools import lru_cache

from django import forms
from django.utils.html import format_html, format_html_join

from accounts.scheduling import known_time_zones
from accounts.time_zones import zone_aliases, zone_choices, zone_from_text, zone_label


class TimeZoneInput(forms.TextInput):
    """A text input plus a <datalist> of 'City (UTC+h)' labels, each with its country."""

    def __init__(self, attrs=None):
        defaults = {
            "autocomplete": "off",
            "spellcheck": "false",
            "placeholder": "Start typing a city",
            "data-timezone-input": "",
        }
        super().__init__({**defaults, **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["attrs"]["list"] = self.list_id(context["widget"]["attrs"].get("id") or name)
        return context

    @staticmethod
    def list_id(input_id: str) -> str:
        return f"{input_id}-choices"

    def render(self, name, value, attrs=None, renderer=None):
        box = super().render(name, value, attrs, renderer)
        list_id = self.list_id((attrs or {}).get("id") or self.attrs.get("id") or name)
        return format_html('{}<datalist id="{}">{}</datalist>', box, list_id, datalist_options(_quarter_hour()))


def _quarter_hour() -> datetime:
    """Now, to the quarter hour: clocks change on one, so the list is built once per quarter."""
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


@lru_cache(maxsize=2)
def datalist_options(now: datetime) -> str:
    """The <option>s of every listed zone: label with today's offset, IANA name, aliases, country."""
    aliases: dict[str, list[str]] = {}
    for alias, listed in zone_aliases().items():
        aliases.setdefault(listed, []).append(alias)
    return format_html_join(
        "",
        '<option value="{}" data-zone="{}" data-aliases="{}">{}</option>',
        (
            (
                zone_label(choice.name, now),
                choice.name,
                " ".join(sorted(aliases.get(choice.name, []))),
                choice.country or "Coordinated Universal Time",
            )
            for choice in zone_choices()
        ),
    )


class TimeZoneField(forms.CharField):
    """An IANA zone, typed or picked as a city; cleaned to its IANA name."""

    widget = TimeZoneInput

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Time zone")
        kwargs.setdefault("help_text", "Your city, or one near you in the same time zone.")
        kwargs.setdefault("max_length", 200)
        super().__init__(
            error_messages={
                "required": "Choose your time zone.",
                "max_length": "Type a city, such as Paris or New York.",
            },
            **kwargs,
        )

    def prepare_value(self, value):
        # A stored zone shows as its label; what the reader typed shows as typed.
        if isinstance(value, str) and value in known_time_zones():
            return zone_label(value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        if text in self.empty_values:
            return text
        name = zone_from_text(text)
        if name is None:
            # The typed text is not echoed in the message: it may be anything.
            raise forms.ValidationError(
                "We do not know that time zone. Type a city, such as Paris or New York, and pick it from the list.",
                code="invalid_choice",
            )
        return name
