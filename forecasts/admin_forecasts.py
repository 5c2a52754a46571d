"""Admin for the knowledge base (Passage) and the daily forecasts (Forecast).

Imported by forecasts/admin.py. A Forecast is reviewed and edited here; what is saved is what
gets sent. An edit is checked against the sky facts like generated text, and refused unless
the editor ticks the override. Actions approve a forecast or write it again.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from forecasts.models import Forecast, Passage
from forecasts.reading_cache import forecasts_changed
from forecasts.topics import TOPIC_LABELS, TOPICS
from forecasts.writing.generation import forecast_regenerate
from forecasts.writing.grounding import check_forecast
from forecasts.writing.knowledge import PassageDoc
from forecasts.writing.retrieval import RetrievalError, retrieval_backend
from horoscope_site.json_input import JSON_INPUT_ADMIN_FIELDS

MAX_REGENERATE = 12


@admin.register(Passage)
class PassageAdmin(admin.ModelAdmin):
    list_display = ["key", "kind", "body", "other_body", "sign", "house", "aspect", "title", "indexed", "updated_at"]
    list_filter = ["kind", "body", "sign", "house", "aspect"]
    search_fields = ["key", "title", "text"]
    readonly_fields = ["content_hash", "indexed_hash", "updated_at"]
    fields = ["key", "kind", "body", "other_body", "sign", "house", "aspect", "topics", "title", "text"]
    formfield_overrides = JSON_INPUT_ADMIN_FIELDS
    actions = ["index_now"]

    @admin.display(boolean=True, description="indexed")
    def indexed(self, passage: Passage) -> bool:
        try:
            return passage.indexed_hash == retrieval_backend().index_token(passage.content_hash)
        except RetrievalError:
            return False

    def save_model(self, request, obj: Passage, form, change) -> None:
        # The hash follows the content, so `kb_index` pushes the edit and the loader keeps it.
        obj.content_hash = PassageDoc.from_model(obj).content_hash
        super().save_model(request, obj, form, change)

    @admin.action(description="Push the selected passages to the passage index now", permissions=["change"])
    def index_now(self, request: HttpRequest, queryset: QuerySet[Passage]) -> None:
        index = retrieval_backend()
        rows = list(queryset)
        try:
            index.sync([PassageDoc.from_model(row) for row in rows])
        except RetrievalError as error:
            self.message_user(request, f"The {index.name} index refused: {error}", messages.ERROR)
            return
        for row in rows:
            row.indexed_hash = index.index_token(row.content_hash)
        Passage.objects.bulk_update(rows, ["indexed_hash"])
        self.message_user(request, f"{len(rows)} passages pushed to the {index.name} index.")


def _section_field(topic: str) -> forms.CharField:
    return forms.CharField(
        label=TOPIC_LABELS[topic], required=False, widget=forms.Textarea(attrs={"rows": 5, "cols": 100})
    )


class ForecastForm(forms.ModelForm):
    """Headline, overview and one box per topic; the text is checked against the facts on save."""

    section_love = _section_field("love")
    section_career = _section_field("career")
    section_money = _section_field("money")
    section_health = _section_field("health")
    section_growth = _section_field("growth")
    advice_do = forms.CharField(label="Do", required=False, max_length=200)
    advice_dont = forms.CharField(label="Don't", required=False, max_length=200)
    override_grounding = forms.BooleanField(
        required=False,
        label="Save even if the grounding check fails",
        help_text="Only when you are sure the check is wrong: the text goes to readers as it is.",
    )

    class Meta:
        model = Forecast
        fields = ["headline", "overview"]
        widgets = {"overview": forms.Textarea(attrs={"rows": 10, "cols": 100})}
        help_texts = {
            "overview": "The main reading. [[at:2026-03-09T14:32Z]] is a time slot: each reader sees that instant "
            'in their own zone ("at 14:32 this afternoon"); it must be the moment of an event the sentence names.'
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        sections = self.instance.sections if isinstance(self.instance.sections, dict) else {}
        for topic in TOPICS:
            self.fields[f"section_{topic}"].initial = sections.get(topic, "")
        advice = self.instance.advice if isinstance(self.instance.advice, dict) else {}
        self.fields["advice_do"].initial = advice.get("do", "")
        self.fields["advice_dont"].initial = advice.get("dont", "")

    def clean(self):
        cleaned = super().clean()
        sections = {topic: (cleaned.get(f"section_{topic}") or "").strip() for topic in TOPICS}
        cleaned["sections"] = sections
        advice = {key: (cleaned.get(f"advice_{key}") or "").strip() for key in ("do", "dont")}
        cleaned["advice"] = advice
        instance = self.instance
        violations = check_forecast(
            cleaned.get("headline") or "",
            cleaned.get("overview") or "",
            sections,
            instance.facts or [],
            instance.sign,
            advice,
        )
        self.violations = violations
        if violations and not cleaned.get("override_grounding"):
            listed = "; ".join(str(v) for v in violations[:6])
            raise forms.ValidationError(f"The text states things the sky facts do not support: {listed}")
        return cleaned


# Read-only in the admin, in a fieldset of their own: how a forecast came to be.
HOW_IT_WAS_WRITTEN = [
    "generator",
    "model_name",
    "prompt_version",
    "grounded",
    "fallback_reason",
    "attempts",
    "tokens",
    "claimed_at",
    "edited_by",
    "edited_at",
    "created_at",
    "updated_at",
]


@admin.register(Forecast)
class ForecastAdmin(admin.ModelAdmin):
    form = ForecastForm
    list_display = ["date", "sign", "status", "headline", "generator", "grounded", "attempts", "tokens", "edited_by"]
    list_filter = ["status", "generator", "grounded", "sign"]
    search_fields = ["headline", "overview"]
    date_hierarchy = "date"
    list_select_related = ["edited_by"]
    actions = ["approve", "regenerate"]
    readonly_fields = ["date", "sign", "status", "facts_list", "passages_list", *HOW_IT_WAS_WRITTEN]
    fieldsets = [
        (None, {"fields": ["date", "sign", "status"]}),
        (
            "Text (what readers get)",
            {
                "fields": [
                    "headline",
                    "overview",
                    *(f"section_{topic}" for topic in TOPICS),
                    "advice_do",
                    "advice_dont",
                    "override_grounding",
                ]
            },
        ),
        ("Sky facts and passages it was written from", {"fields": ["facts_list", "passages_list"]}),
        (
            "How it was written",
            {"fields": HOW_IT_WAS_WRITTEN},
        ),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # forecasts are written by forecasts_prepare

    @admin.display(description="tokens (in / out)")
    def tokens(self, forecast: Forecast) -> str:
        return f"{forecast.input_tokens} / {forecast.output_tokens}"

    @admin.display(description="sky facts")
    def facts_list(self, forecast: Forecast) -> str:
        facts = [fact for fact in forecast.facts or [] if isinstance(fact, dict)]
        if not facts:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}{} <small>({}, id {})</small></li>",
                (
                    (
                        "✓ " if fact.get("used") else "",
                        fact.get("summary", ""),
                        fact.get("kind", ""),
                        fact.get("id", ""),
                    )
                    for fact in facts
                ),
            ),
        )

    @admin.display(description="passages")
    def passages_list(self, forecast: Forecast) -> str:
        passages = list(forecast.passages.all())
        if not passages:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{}</a> <small>{}</small></li>',
                ((reverse("admin:forecasts_passage_change", args=[p.pk]), p.title, p.key) for p in passages),
            ),
        )

    def save_model(self, request, obj: Forecast, form, change) -> None:
        obj.sections = form.cleaned_data["sections"]
        obj.advice = form.cleaned_data["advice"]
        obj.grounded = not getattr(form, "violations", [])
        obj.edited_by = request.user
        obj.edited_at = timezone.now()
        if obj.status in (Forecast.Status.GENERATING, Forecast.Status.FAILED):
            obj.status = Forecast.Status.DRAFT
        super().save_model(request, obj, form, change)
        if not obj.grounded:
            self.message_user(request, "Saved although the grounding check failed, as you asked.", messages.WARNING)

    @admin.action(description="Approve the selected forecasts", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Forecast]) -> None:
        drafts = queryset.filter(status=Forecast.Status.DRAFT)
        signs = set(drafts.values_list("sign", flat=True))
        count = drafts.update(status=Forecast.Status.APPROVED)
        forecasts_changed(signs)  # QuerySet.update sends no signal: the pages are told here
        self.message_user(request, f"{count} forecasts approved.")
        if count < queryset.count():
            self.message_user(request, "Only drafts can be approved; the others were left alone.", messages.WARNING)

    @admin.action(description="Write the selected forecasts again (replaces any edit)", permissions=["change"])
    def regenerate(self, request: HttpRequest, queryset: QuerySet[Forecast]) -> None:
        rows = list(queryset[: MAX_REGENERATE + 1])
        if len(rows) > MAX_REGENERATE:
            self.message_user(request, f"Pick at most {MAX_REGENERATE} forecasts at a time.", messages.ERROR)
            return
        results = [forecast_regenerate(row) for row in rows]
        written = [f for f in results if f.is_ready]
        self.message_user(
            request,
            format_html(
                "{} forecasts written again ({}).",
                len(written),
                ", ".join(f"{f.get_sign_display()} {f.date}: {f.get_generator_display()}" for f in written),
            ),
        )
        failed = len(results) - len(written)
        if failed:
            self.message_user(request, f"{failed} could not be written; see their fallback reason.", messages.ERROR)
