"""Catching up in the web process after an outage, without waiting for the sweep.

When the database could not take an event (kept in the spool) or the queue
could not take its task (remembered by integrations.tasks), the process that
acknowledged it starts one background thread. The thread retries every
second, then less often, and exits once nothing is left: spooled events are
replayed as soon as the database answers, left-behind tasks queued as soon as
the broker does. So the customers who wrote during a short outage are
answered seconds after it ends, not at the next sweep (which a message
becomes due for only a minute after it came, REPLY_SWEEP_AFTER_S).

What a process holds when it dies is not lost: spooled events are on disk
for the next replay, and a message whose task was never queued is the
sweep's.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 10.0

_lock = threading.Lock()
_thread: threading.Thread | None = None


def catch_up_soon() -> None:
    """Start this process's catch-up thread unless it is running (or the setting turns it off)."""
    global _thread
    if not settings.OUTAGE_CATCH_UP_THREAD:
        return
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _thread = threading.Thread(target=_run, name="storebot-catch-up", daemon=True)
        _thread.start()


def catch_up_once() -> bool:
    """One round of both kinds of catching up; True when nothing is left for this process to do."""
    from integrations import spool, tasks

    replay = spool.replay()
    queued_all = tasks.requeue_left_behind()
    return queued_all and not replay.stopped and replay.pending == 0


def _run() -> None:
    delay = FIRST_DELAY_S
    while True:
        time.sleep(delay)
        try:
            if catch_up_once():
                return
        except Exception:
            logger.exception("catching up after an outage failed; trying again in %.0f s", delay)
        finally:
            # This thread's own connections: one broken by the outage is not used again.
            connections.close_all()
        delay = min(delay * 1.5, MAX_DELAY_S)
