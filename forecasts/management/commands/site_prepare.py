"""Get a fresh site ready to use: what `make run` calls after migrating."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from horoscope_site.config import SITE_URL_RECORD


class Command(BaseCommand):
    help = "Prepare what the site needs to run (knowledge base, every date's readings); `make run` calls it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--site-url",
            help="the address `make run` serves on, recorded so commands run later by hand link to it too",
        )

    def handle(self, *args, site_url: str | None, **options):
        if site_url:
            self.record_site_url(site_url)
        self.prepare_content()

    def record_site_url(self, site_url: str) -> None:
        if not site_url.startswith(("http://", "https://")):
            raise CommandError(f"--site-url must start with http:// or https://, not {site_url!r}")
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        (settings.VAR_DIR / SITE_URL_RECORD).write_text(site_url.rstrip("/") + "\n", encoding="utf-8")

    def prepare_content(self) -> None:
        """Load and index the knowledge base, then write the missing forecasts of every date that is
        today somewhere on Earth, and of the next date to begin.

        The offline composer writes them (seconds, no account needed); `forecasts_prepare` and the
        admin's "write again" use the configured generator.
        """
        from django.utils import timezone

        from forecasts.earth_dates import dates_on_earth_and_next
        from forecasts.writing.generation import OFFLINE_PATH, forecasts_prepare_days
        from forecasts.writing.knowledge import KnowledgeError
        from forecasts.writing.retrieval import RetrievalError, knowledge_index

        try:
            report = knowledge_index()
            self.stdout.write(f"Knowledge base: {report.loaded.summary()}; index: {report.summary()}.")
        except (KnowledgeError, RetrievalError) as error:
            self.stderr.write(f"Knowledge base not indexed ({error}); forecasts use what is there.")
        dates = dates_on_earth_and_next(timezone.now())
        results = forecasts_prepare_days(dates[0], len(dates), generator_path=OFFLINE_PATH)
        for result in results:
            self.stdout.write(
                f"Forecasts for {result.day}: {len(result.generated)} written, {len(result.skipped)} ready."
            )
