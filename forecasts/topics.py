"""The life areas a forecast covers and a reader picks from: one list for models, forms and prompts.

Pure data (no Django), so the prompts and the offline composer can use it as they use
forecasts/zodiac.py's signs. The order is the order of an email's sections.
"""

TOPIC_LABELS: dict[str, str] = {
    "love": "Love",
    "career": "Career",
    "money": "Money",
    "health": "Health",
    "growth": "Growth",
}
TOPICS: tuple[str, ...] = tuple(TOPIC_LABELS)
TOPIC_CHOICES: list[tuple[str, str]] = list(TOPIC_LABELS.items())
