"""The train schedule with a fixed clock: departures, the departure window, the next train."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clambake_tui.bundling.schedule import CLOCK_ENV, TrainSchedule, now_utc
from clambake_tui.errors import ConfigError


def at(hour: int, minute: int, second: int = 0, day: int = 7) -> datetime:
    return datetime(2026, 4, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "train", "in_window"),
    [
        (at(14, 20), at(14, 20), True),
        (at(14, 24, 59), at(14, 20), True),
        (at(14, 25), at(14, 20), False),
        (at(14, 29, 59), at(14, 20), False),
        (at(14, 30), at(14, 30), True),
        (at(0, 0), at(0, 0), True),
    ],
)
def test_a_ten_minute_schedule_boards_during_the_first_five_minutes(
    now: datetime, train: datetime, in_window: bool
) -> None:
    status = TrainSchedule(10).status(now)
    assert status.train == train
    assert status.in_window is in_window


def test_outside_the_window_it_names_the_next_departure() -> None:
    status = TrainSchedule(10).status(at(14, 27))
    assert status.next_departure == at(14, 30)
    assert "next train leaves at 14:30 UTC" in status.describe()


def test_inside_the_window_it_says_until_when_the_train_boards() -> None:
    status = TrainSchedule(10).status(at(14, 21))
    assert status.window_closes == at(14, 25)
    assert "14:20 train is boarding until 14:25:00" in status.describe()


def test_a_one_minute_schedule_is_always_boarding() -> None:
    schedule = TrainSchedule(1)
    assert all(schedule.status(at(9, m, s)).in_window for m in range(60) for s in (0, 30, 59))


def test_departures_count_from_midnight_utc_and_the_last_slot_of_a_day_is_short() -> None:
    schedule = TrainSchedule(7)
    assert schedule.departure_at_or_before(at(0, 8)) == at(0, 7)
    assert schedule.next_departure_after(at(23, 58)) == at(0, 0, day=8)


def test_times_in_other_zones_are_read_in_utc() -> None:
    from datetime import timedelta, timezone

    local = datetime(2026, 4, 7, 16, 21, tzinfo=timezone(timedelta(hours=2)))
    assert TrainSchedule(10).status(local).train == at(14, 20)


def test_the_clock_can_be_fixed_for_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLOCK_ENV, "2026-04-07T14:21:00Z")
    assert now_utc() == at(14, 21)
    monkeypatch.setenv(CLOCK_ENV, "yesterday")
    with pytest.raises(ConfigError, match="ISO-8601"):
        now_utc()


def test_a_schedule_needs_at_least_one_minute() -> None:
    with pytest.raises(ConfigError):
        TrainSchedule(0)
