"""Fixtures for the generation tests: the knowledge base, a fake OpenAI server, dummy keys."""

import pytest

from devtools.fake_openai import FakeOpenAI
from forecasts.writing.knowledge import knowledge_load
from forecasts.writing.retrieval import remote_breaker

OPENAI_PATH = "forecasts.writing.generators.openai_responses.OpenAIGenerator"


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai_settings(settings, fake_openai):
    """Point the real OpenAI SDK at the fake server with a dummy key made here."""
    settings.FORECAST_GENERATOR = OPENAI_PATH
    settings.OPENAI_API_KEY = "sk-test-" + "x" * 24
    settings.OPENAI_BASE_URL = fake_openai.base_url
    settings.OPENAI_TIMEOUT = 2.0
    settings.OPENAI_BACKOFF = 0.01
    settings.OPENAI_MAX_ATTEMPTS = 3
    settings.RETRIEVAL_BACKEND = "forecasts.writing.retrieval.LocalIndex"
    return settings


@pytest.fixture
def kb(db):
    """The knowledge base loaded into Passage rows."""
    return knowledge_load()


@pytest.fixture(autouse=True)
def closed_breaker():
    remote_breaker.reset()
    yield
    remote_breaker.reset()
