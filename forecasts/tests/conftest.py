"""Fixtures shared by the forecasts tests."""

import pytest

from forecasts.sending.ses import forget_max_send_rate


@pytest.fixture(autouse=True)
def fresh_send_rate():
    """The SES maximum rate is cached per process and in the cache: every test asks again."""
    forget_max_send_rate()
    yield
    forget_max_send_rate()
