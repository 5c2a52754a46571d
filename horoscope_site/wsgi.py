import os

from django.core.wsgi import get_wsgi_application

from horoscope_site.entrypoints import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "horoscope_site.settings")

with exit_on_config_error():
    application = get_wsgi_application()
