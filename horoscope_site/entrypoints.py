import contextlib
import sys
from collections.abc import Iterator

from django.core.exceptions import ImproperlyConfigured

CONFIG_ERROR_STATUS = 2
# A gunicorn worker that exits with 4 ("App failed to load") stops the whole server; with any
# other status gunicorn would start the worker again, forever, with the site down.
GUNICORN_APP_LOAD_ERROR = 4


@contextlib.contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Turn a configuration error into one line per problem on stderr and a non-zero exit."""
    try:
        yield
    except ImproperlyConfigured as exc:
        for problem in str(exc).splitlines() or [""]:
            print(f"configuration error: {problem}", file=sys.stderr)
        sys.exit(GUNICORN_APP_LOAD_ERROR if "gunicorn.arbiter" in sys.modules else CONFIG_ERROR_STATUS)
