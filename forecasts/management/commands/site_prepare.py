"""Get a fresh site ready to use: what `make run` calls after migrating."""

from django.conf import settings
from django.core.management.base import BaseCommand

from forecasts.sending.outbox import OUTBOX_BACKEND


class Command(BaseCommand):
    help = "Prepare the knowledge base and the readings of every date on Earth now, and say where to look."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        self.prepare_content()
        base = f"http://{host}:{port}"
        self.stdout.write("")
        self.stdout.write(f"  Daily Horoscope: {base}/")
        if settings.EMAIL_BACKEND == OUTBOX_BACKEND:
            self.stdout.write(f"  Sent emails:     {base}/outbox/   (.eml files in {settings.EMAIL_OUTBOX_DIR})")
        self.stdout.write(f"  Admin:           {base}/admin/")
        self.stdout.write("                   (make a login: .venv/bin/python manage.py createsuperuser)")
        self.stdout.write(f"  Health:          {base}/healthz")
        self.stdout.write("")

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
