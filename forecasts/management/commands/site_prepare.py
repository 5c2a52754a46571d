"""Get a fresh site ready to use: what `make run` calls after migrating."""

from django.conf import settings
from django.core.management.base import BaseCommand

from forecasts.outbox import OUTBOX_BACKEND


class Command(BaseCommand):
    help = "Prepare what the site needs to run (knowledge base, today's forecasts) and say where to look."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        base = f"http://{host}:{port}"
        self.stdout.write("")
        self.stdout.write(f"  Daily Horoscope: {base}/")
        if settings.EMAIL_BACKEND == OUTBOX_BACKEND:
            self.stdout.write(f"  Sent emails:     {base}/outbox/   (.eml files in {settings.EMAIL_OUTBOX_DIR})")
        self.stdout.write(f"  Admin:           {base}/admin/")
        self.stdout.write("                   (make a login: .venv/bin/python manage.py createsuperuser)")
        self.stdout.write(f"  Health:          {base}/healthz")
        self.stdout.write("")
