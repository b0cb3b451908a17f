"""Background work on one machine: run due service calls and fire due timers in a loop.

Decision: this is the embedded default's stand-in for the Celery worker and beat (which take
over in the production topology); it calls the very same engine functions they call, one short
transaction each, so behaviour does not depend on which one runs it.
"""

from __future__ import annotations

import logging
import threading

from engine import service_calls, timers
from engine.config import Settings
from engine.db import make_engine, make_session_factory

log = logging.getLogger(__name__)


class EmbeddedRunner:
    def __init__(self, settings: Settings, interval: float = 1.0):
        self.settings = settings
        self.interval = interval
        self.stop = threading.Event()
        self.session_factory = make_session_factory(make_engine(settings.database_url))

    def run_once(self) -> int:
        """One round: every due service call, then every due timer; how much work was done."""
        done = service_calls.run_due(self.session_factory, self.settings)
        done += timers.advance_due(self.session_factory, self.settings)
        return done

    def run_forever(self) -> None:
        while not self.stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # one bad round must not stop background work for good
                log.exception("background round failed")
                busy = 0
            if not busy:
                self.stop.wait(self.interval)
