"""GitHub's secondary rate limits, when switched on: content creation per minute and hour, and
requests in flight at once, per identity."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["SecondaryLimits"]


@dataclass
class SecondaryLimits:
    """Counts per identity; `check` says whether a request may go ahead (and holds its slot)."""

    content_per_minute: int = 80
    content_per_hour: int = 500
    concurrent: int = 100
    retry_after: int = 60
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _created: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    _in_flight: dict[str, int] = field(default_factory=dict, repr=False)

    def enter(self, identity: str, method: str) -> bool:
        """Start a request; False (and nothing held) if a secondary limit refuses it."""
        now = time.monotonic()
        with self._lock:
            if self._in_flight.get(identity, 0) >= self.concurrent:
                return False
            if method == "POST":
                stamps = self._created.setdefault(identity, deque())
                while stamps and stamps[0] < now - 3600:
                    stamps.popleft()
                last_minute = sum(1 for t in stamps if t >= now - 60)
                if last_minute >= self.content_per_minute or len(stamps) >= self.content_per_hour:
                    return False
                stamps.append(now)
            self._in_flight[identity] = self._in_flight.get(identity, 0) + 1
            return True

    def leave(self, identity: str) -> None:
        with self._lock:
            self._in_flight[identity] = max(0, self._in_flight.get(identity, 0) - 1)
