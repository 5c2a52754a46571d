"""Run the same work in several threads released at one instant, as two workers would."""

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connection

T = TypeVar("T")


def at_once(work: Callable[[], T], times: int = 2, timeout: float = 120) -> list[T]:
    """`work` in `times` threads started together, each on its own database connection.

    Returns what each returned; the first error any of them raised is raised here.
    """
    barrier = threading.Barrier(times)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=timeout)
            results.append(work())
        except Exception as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, name=f"at-once-{i}") for i in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise errors[0]
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"{work!r} did not finish within {timeout} s")
    return results
