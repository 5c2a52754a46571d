"""`{% fixed_url 'name' %}`: the URL of a route without arguments, reversed once per process.

`{% url %}` walks the resolver on every render; the header, footer and portal navigation
reverse about a dozen such URLs on every page. Those URLs depend only on the URLconf and the
script prefix, so they are kept per (urlconf, prefix, name). Routes with arguments keep
`{% url %}`. Load with `{% load fixed_urls %}`; `{% fixed_url 'name' as var %}` works too.
"""

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse

register = template.Library()

_reversed: dict[tuple[str | None, str, str], str] = {}


@register.simple_tag
def fixed_url(name: str) -> str:
    key = (get_urlconf(), get_script_prefix(), name)
    url = _reversed.get(key)
    if url is None:
        url = _reversed[key] = reverse(name)  # NoReverseMatch as {% url %} would raise it
    return url
