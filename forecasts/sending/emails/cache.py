"""Rendered forecasts kept per process, so a forecast is rendered once for all its readers."""

import threading
from collections import OrderedDict

from django.conf import settings

from forecasts.models import Forecast
from forecasts.sending.emails.render import ForecastParts, render_forecast_parts

# What ForecastPartsCache needs of a forecast to find it rendered: the send loads only these
# per batch, not the texts and facts (a tenth of the rows' load time).
FORECAST_KEY_FIELDS = ("id", "date", "sign", "status", "updated_at")


class ForecastPartsCache:
    """Rendered forecasts, the least recently used dropped beyond `size` (None: no limit).

    Keyed by what rendering reads besides the templates: the forecast as last saved
    (updated_at, so an edit renders again), the subject prefix and the settings written into
    every email. Unsaved forecasts (previews) are rendered each time. A forecast loaded with
    only its key's fields (FORECAST_KEY_FIELDS) is loaded whole when it has to be rendered.
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = size
        self._parts: OrderedDict[tuple, ForecastParts] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(forecast: Forecast, subject_prefix: str) -> tuple:
        return (
            forecast.pk,
            forecast.updated_at,
            subject_prefix,
            settings.SITE_URL,
            settings.DEFAULT_FROM_EMAIL,
            repr(settings.AWS_SES_CONFIGURATION_SET),
        )

    def get(self, forecast: Forecast, subject_prefix: str) -> ForecastParts:
        if forecast.pk is None:
            return render_forecast_parts(forecast, subject_prefix)
        key = self._key(forecast, subject_prefix)
        with self._lock:
            parts = self._parts.get(key)
            if parts is not None:
                self._parts.move_to_end(key)
                return parts
        if forecast.get_deferred_fields():  # loaded for its key only (the send): the whole row to render
            forecast = Forecast.objects.get(pk=forecast.pk)
            key = self._key(forecast, subject_prefix)
        parts = render_forecast_parts(forecast, subject_prefix)
        with self._lock:
            self._parts[key] = parts
            while self.size is not None and len(self._parts) > self.size:
                self._parts.popitem(last=False)
        return parts


# One per process, for the daily send: a day's readers of one forecast are spread over many
# send batches, and rendering one (templates, CSS inlining, the wheel) costs as much as
# sending a few hundred emails. 12 signs x a few local dates in flight fit easily.
send_parts_cache = ForecastPartsCache(size=64)
