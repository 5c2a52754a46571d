"""A worker's pool child asked to stop (SIGTERM to the worker's process group, as ECS sends it).

Celery's pool children take SIGTERM's default action and die at once, mid-send: the parent's
warm shutdown then waits on a batch whose process is gone, and the batch's claimed chunk is
stranded. Instead the child notes the request; the send hands no further email over, puts
the rest of its batch back in the queue for a new task, and returns, so the task is
acknowledged and the warm shutdown ends within seconds.
"""

import signal
import threading

_stop = threading.Event()


def stop_requested() -> bool:
    return _stop.is_set()


def request_stop(signum=None, frame=None) -> None:
    _stop.set()


def stop_on_sigterm() -> None:
    """In a pool child: SIGTERM asks the running send to hand its batch back (see the module)."""
    _stop.clear()
    signal.signal(signal.SIGTERM, request_stop)
