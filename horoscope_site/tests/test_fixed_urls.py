"""{% fixed_url %} gives what {% url %} gives, under every script prefix, and fails as loudly."""

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, reverse, set_script_prefix

NAMES = ["forecasts:home", "forecasts:today", "portal:dashboard", "portal:pause", "account_logout", "admin:index"]


def render(source: str) -> str:
    return Template("{% load fixed_urls %}" + source).render(Context())


@pytest.fixture
def script_prefix():
    yield set_script_prefix
    set_script_prefix("/")


@pytest.mark.parametrize("name", NAMES)
def test_same_url_as_the_url_tag(name):
    assert render(f"{{% fixed_url '{name}' %}}") == Template(f"{{% url '{name}' %}}").render(Context())
    assert render(f"{{% fixed_url '{name}' %}}") == reverse(name)


def test_each_script_prefix_gets_its_own_urls(script_prefix):
    assert render("{% fixed_url 'portal:dashboard' %}") == "/portal/"
    script_prefix("/horoscope/")
    assert render("{% fixed_url 'portal:dashboard' %}") == "/horoscope/portal/"
    script_prefix("/")
    assert render("{% fixed_url 'portal:dashboard' %}") == "/portal/"


def test_as_sets_a_variable():
    assert render("{% fixed_url 'portal:account' as here %}[{{ here }}]") == "[/portal/account/]"


def test_an_unknown_name_raises():
    with pytest.raises(NoReverseMatch):
        render("{% fixed_url 'portal:nowhere' %}")
