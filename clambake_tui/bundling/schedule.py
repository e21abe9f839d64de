"""The train schedule: departures every `schedule_minutes` (UTC), and when a train may leave.

Departures are counted from midnight UTC: with the default 10 minutes they are :00, :10, :20 ...
of every hour, the same instants as the workflow's cron `*/10 * * * *`. A train may leave during
its **departure window**: the first half of the interval after each departure (at least one
minute), e.g. 14:20:00 up to but not including 14:25:00. Scheduled runs that GitHub starts a few
minutes late still catch their train; a run in the second half waits for the next departure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from clambake_tui.errors import ConfigError

__all__ = ["TrainSchedule", "ScheduleStatus", "now_utc", "CLOCK_ENV"]

# A fixed clock (ISO-8601) for demos and end-to-end tests whose bundler runs in another process.
CLOCK_ENV = "CLAMBAKE_NOW"


def now_utc() -> datetime:
    """The current time in UTC, or the fixed clock from $CLAMBAKE_NOW."""
    fixed = os.environ.get(CLOCK_ENV)
    if not fixed:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(fixed.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{CLOCK_ENV}={fixed!r} is not an ISO-8601 time; use e.g. 2026-04-07T14:20:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """Where `now` stands on the schedule."""

    now: datetime
    # The latest departure at or before `now`: the train a run at `now` belongs to.
    train: datetime
    next_departure: datetime
    in_window: bool
    window_closes: datetime

    def describe(self) -> str:
        if self.in_window:
            return (
                f"the {self.train:%H:%M} train is boarding until {self.window_closes:%H:%M:%S} UTC"
            )
        return f"no train now; the next train leaves at {self.next_departure:%H:%M} UTC"


@dataclass(frozen=True, slots=True)
class TrainSchedule:
    every_minutes: int = 10

    def __post_init__(self) -> None:
        if self.every_minutes < 1:
            raise ConfigError("bundling.schedule_minutes must be at least 1")

    @property
    def window_minutes(self) -> int:
        return max(1, self.every_minutes // 2)

    def departure_at_or_before(self, now: datetime) -> datetime:
        now = now.astimezone(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        minutes = int((now - midnight).total_seconds() // 60)
        return midnight + timedelta(minutes=minutes - minutes % self.every_minutes)

    def next_departure_after(self, now: datetime) -> datetime:
        """The first departure strictly after `now` (a day's last slot may be shorter)."""
        candidate = self.departure_at_or_before(now) + timedelta(minutes=self.every_minutes)
        next_midnight = now.astimezone(UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        ) + timedelta(days=1)
        return min(candidate, next_midnight)

    def status(self, now: datetime) -> ScheduleStatus:
        now = now.astimezone(UTC)
        train = self.departure_at_or_before(now)
        closes = train + timedelta(minutes=self.window_minutes)
        return ScheduleStatus(
            now=now,
            train=train,
            next_departure=self.next_departure_after(now),
            in_window=now < closes,
            window_closes=closes,
        )
