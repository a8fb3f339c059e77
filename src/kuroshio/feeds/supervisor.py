"""Keeping a feed going: a feed that fails is restarted after a back-off with jitter, and shown
as down until it is up again.

:class:`FeedSupervisor` runs one :class:`~kuroshio.feeds.feed.Feed` life after another; nothing
a feed raises leaves it, so a feed never stops the node or its links. The back-off doubles from
:data:`RESTART_BASE_S` to :data:`RESTART_MAX_S`, each delay moved by up to :data:`RESTART_JITTER`
either way so that feeds failing together do not retry together, and starts again from the base
once a life has lasted :data:`STABLE_AFTER_S`. It opens no sockets itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final

from kuroshio.feeds.feed import Feed, FeedStatus

log = logging.getLogger("kuroshio.feeds")

RESTART_BASE_S: Final = 1.0
RESTART_FACTOR: Final = 2.0
RESTART_MAX_S: Final = 60.0
RESTART_JITTER: Final = 0.25
"""Fraction of a delay by which it is moved, at random, either way."""
STABLE_AFTER_S: Final = 30.0
"""A life this long resets the back-off."""


def restart_delay(failures: int, rng: random.Random) -> float:
    """Seconds to wait before the next start, after ``failures`` failures in a row (1, 2, …)."""
    base = min(RESTART_MAX_S, RESTART_BASE_S * RESTART_FACTOR ** max(0, failures - 1))
    return base * (1.0 + rng.uniform(-RESTART_JITTER, RESTART_JITTER))


class FeedSupervisor:
    """Runs a feed and starts it again whenever it fails.

    ``sleep``, ``rng`` and ``monotonic`` are the waiting, the jitter and the clock of the
    back-off; tests pass their own.
    """

    def __init__(
        self,
        feed: Feed,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feed = feed
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self.failures = 0
        """Failures in a row since the last stable life."""

    def status(self) -> FeedStatus:
        return self.feed.status()

    async def run(self) -> None:
        """Run the feed until cancelled (then it is stopped) or until a life ends by itself."""
        feed = self.feed
        try:
            while True:
                feed.stats.enter("starting")
                started = self._monotonic()
                try:
                    await feed.run()
                except Exception as error:  # a feed never takes the node down with it
                    errors = error.exceptions if isinstance(error, ExceptionGroup) else (error,)
                    feed.stats.failed(errors[0])
                else:
                    return
                feed.stats.enter("down")
                feed.stats.restarts += 1
                lived = self._monotonic() - started
                self.failures = 1 if lived >= STABLE_AFTER_S else self.failures + 1
                delay = restart_delay(self.failures, self._rng)
                log.warning(
                    "feed %s is down (%s); starting it again in %.1f s",
                    feed.name,
                    feed.stats.last_error,
                    delay,
                )
                await self._sleep(delay)
        finally:
            feed.stats.enter("stopped")
