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
_pool_child = [False]  # set by worker_process_init: only pool children take SIGTERM this way


def stop_requested() -> bool:
    return _stop.is_set()


def request_stop(signum=None, frame=None) -> None:
    _stop.set()


def ignore_sigterm_until_a_task() -> None:
    """worker_process_init, in a pool child: an idle child ignores SIGTERM (it ends when its parent
    closes the pool). billiard then leaves it so, instead of putting its own exit handler there."""
    _stop.clear()
    _pool_child[0] = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def stop_on_sigterm() -> None:
    """Before each task, in a pool child: SIGTERM asks the running send to hand its batch back.

    A request counts for the task running when it came: the worker that got it too takes no
    new task, and a child signalled alone must not hand back every batch after it.
    """
    if not _pool_child[0]:
        return
    _stop.clear()
    if signal.getsignal(signal.SIGTERM) is not request_stop:
        signal.signal(signal.SIGTERM, request_stop)
