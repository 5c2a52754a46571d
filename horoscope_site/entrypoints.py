import contextlib
import sys
from collections.abc import Iterator

from django.core.exceptions import ImproperlyConfigured


@contextlib.contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Turn a configuration error into one line on stderr and exit status 2."""
    try:
        yield
    except ImproperlyConfigured as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
