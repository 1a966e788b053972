"""The adherence figure of the patient list: scheduled readings counted in the patient's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.web.adherence import Adherence, adherence, scheduled_by_type, scheduled_readings
from rules.plan import ScheduleEntry

STOCKHOLM = "Europe/Stockholm"
# Friday 4 December 2026, 09:00 in Stockholm (08:00 UTC); the window is the 14 days before.
END = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
START = END - timedelta(days=14)


def test_daily_counts_each_time_of_each_local_day() -> None:
    entry = ScheduleEntry(type="blood_pressure", times=["07:00", "21:00"], days="daily")
    # The window starts 20 Nov 09:00 local: 20 Nov 21:00, then 21 Nov … 3 Dec (13 days × 2),
    # then 4 Dec 07:00: 28.
    assert scheduled_readings(entry, START, END, STOCKHOLM) == 28


def test_weekdays_skip_saturday_and_sunday() -> None:
    entry = ScheduleEntry(type="weight", times=["07:30"], days="weekdays")
    # 21 Nov … 4 Dec 07:30 (20 Nov 07:30 is before the window): 10 weekdays.
    assert scheduled_readings(entry, START, END, STOCKHOLM) == 10


def test_weekly_is_once_per_whole_week() -> None:
    entry = ScheduleEntry(type="weight", times=["07:15"], days="weekly")
    assert scheduled_readings(entry, START, END, STOCKHOLM) == 2
    assert scheduled_readings(entry, END - timedelta(days=6), END, STOCKHOLM) == 0


def test_the_time_is_local_time_across_a_daylight_saving_change() -> None:
    # 08:00 local on 29 March 2026 (summer time from 02:00) is 06:00 UTC, the day before 07:00.
    entry = ScheduleEntry(type="spo2", times=["08:00"])
    start = datetime(2026, 3, 29, 6, 30, tzinfo=UTC)
    assert scheduled_readings(entry, start, start + timedelta(days=1), STOCKHOLM) == 1
    early = datetime(2026, 3, 29, 5, 59, tzinfo=UTC)
    assert scheduled_readings(entry, early, early + timedelta(minutes=2), STOCKHOLM) == 1


def test_no_times_means_once_a_day() -> None:
    entry = ScheduleEntry(type="symptom_score")
    assert scheduled_readings(entry, START, END, STOCKHOLM) == 14


def test_received_counts_up_to_the_schedule_of_its_type() -> None:
    schedule = [
        ScheduleEntry(type="blood_pressure", times=["07:00", "21:00"]),
        ScheduleEntry(type="weight", times=["07:30"]),
    ]
    assert scheduled_by_type(schedule, START, END, STOCKHOLM) == {
        "blood_pressure": 28,
        "weight": 14,
    }
    # 40 blood pressures (two per sitting) do not make up for the weights never sent.
    result = adherence(schedule, {"blood_pressure": 40, "pulse": 9}, START, END, STOCKHOLM)
    assert result == Adherence(received=28, scheduled=42)
    assert result.percent == 67


def test_nothing_scheduled_has_no_percentage() -> None:
    assert adherence([], {"weight": 3}, START, END, STOCKHOLM).percent is None
