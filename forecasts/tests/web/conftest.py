import pytest
import time_machine

from forecasts.tests.factories import ForecastFactory, sample_facts
from forecasts.tests.web.leo_day import AFTERNOON, DAY, SLOTTED


@pytest.fixture
def leo_today(db):
    return ForecastFactory(date=DAY, sign="leo", overview=SLOTTED, facts=sample_facts(DAY))


@pytest.fixture
def afternoon():
    with time_machine.travel(AFTERNOON, tick=False):
        yield


@pytest.fixture
def without_visitor_pages(settings):
    """Visitors' pages built every time, so a test sees what the shared parts of the cache do."""
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if not name.endswith("VisitorPageCacheMiddleware")]
