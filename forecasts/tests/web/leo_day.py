"""The day the page cache tests read Leo's reading on, and the reading's time slot."""

from datetime import UTC, date, datetime, time

DAY = date(2025, 3, 9)
# 16:00 UTC on DAY: DAY for visitors (UTC-12: 04:00), in Paris (17:00) and in New York (12:00, EDT);
# 10 March at UTC+14.
AFTERNOON = datetime.combine(DAY, time(16, 0), tzinfo=UTC)
SLOTTED = "The Moon enters Leo [[at:2025-03-09T14:32Z]], and the mood lifts."
