"""components.config.schedule: parsing `activeHours`, DST-correct transitions and the monthly average.

Expected instants and totals are worked out by hand from the 2027 calendar (1 January 2027 is a Friday, so
2027 has 53 Fridays, 52 of every other weekday, 261 weekdays) and the DST rules: the EU changes on the last
Sunday of March and October at 01:00 UTC (2027-03-28, 2027-10-31); the US on the second Sunday of March and
the first Sunday of November at 02:00 local (2027-03-14, 2027-11-07)."""

from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from components.config.schedule import ActiveHours, parse_active_hours

UTC = timezone.utc
BERLIN = "Mon-Fri 08:00-18:00 Europe/Berlin"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_parses_a_weekday_window():
    hours = parse_active_hours(BERLIN)
    assert hours == ActiveHours(days=(0, 1, 2, 3, 4), start=time(8), end=time(18), tz="Europe/Berlin")
    assert str(hours) == "Mon,Tue,Wed,Thu,Fri 08:00-18:00 Europe/Berlin"


@pytest.mark.parametrize("days, expected", [
    ("Mon,Wed,Fri", (0, 2, 4)),
    ("Mon-Sun", (0, 1, 2, 3, 4, 5, 6)),
    ("Sat-Sun", (5, 6)),
    ("Mon-Wed,Fri", (0, 1, 2, 4)),
    ("fri,mon,FRI", (0, 4)),
])
def test_day_ranges_and_lists(days, expected):
    assert parse_active_hours(f"{days} 09:00-17:30 UTC").days == expected


@pytest.mark.parametrize("text, says", [
    ("Mon-Fri 08:00-18:00", "three parts"),
    ("Mon-Fri 08:00-18:00 Europe/Berlin extra", "three parts"),
    ("Mon-Fry 08:00-18:00 Europe/Berlin", "'Fry' is not a day"),
    ("Fri-Mon 08:00-18:00 Europe/Berlin", "runs backwards"),
    ("Mon-Fri 8am-6pm Europe/Berlin", "not a 24-hour time"),
    ("Mon-Fri 08:00-24:00 Europe/Berlin", "'24:00' is not a 24-hour time"),
    ("Mon-Fri 08:00 Europe/Berlin", "not a time range"),
    ("Mon-Fri 08:00-08:00 Europe/Berlin", "empty"),
    ("Mon-Fri 22:00-06:00 Europe/Berlin", "overnight windows are not supported"),
    ("Mon-Fri 08:00-18:00 Europe/Berlinn", "not an IANA time zone"),
    ("Mon-Fri 08:00-18:00 CEST+2", "not an IANA time zone"),
    ("Mon-Fri 08:00-18:00 ../etc/passwd", "not an IANA time zone"),
])
def test_bad_windows_say_what_is_wrong_with_an_example(text, says):
    with pytest.raises(ValueError) as error:
        parse_active_hours(text)
    assert says in str(error.value)
    assert "Mon-Fri 08:00-18:00 Europe/Berlin" in str(error.value)  # the example


@pytest.mark.parametrize("at, active", [
    (utc(2027, 1, 15, 6, 59), False),   # Fri 07:59 CET
    (utc(2027, 1, 15, 7, 0), True),     # Fri 08:00 CET
    (utc(2027, 1, 15, 16, 59), True),   # Fri 17:59 CET
    (utc(2027, 1, 15, 17, 0), False),   # Fri 18:00 CET: the end is exclusive
    (utc(2027, 7, 16, 6, 0), True),     # Fri 08:00 CEST
    (utc(2027, 7, 16, 5, 59), False),   # Fri 07:59 CEST (would be active if the offset were ignored)
    (utc(2027, 1, 16, 10, 0), False),   # Saturday
    (datetime(2027, 1, 15, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo")), False),  # Fri 02:00 in Berlin
])
def test_is_active_reads_the_instant_in_the_schedule_zone(at, active):
    assert parse_active_hours(BERLIN).is_active(at) is active


def test_is_active_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="aware"):
        parse_active_hours(BERLIN).is_active(datetime(2027, 1, 15, 10))


def test_berlin_transitions_move_an_hour_in_utc_across_the_spring_change():
    # Fri 2027-03-26 is CET (UTC+1); Mon 2027-03-29 is CEST (UTC+2).
    events = parse_active_hours(BERLIN).transitions(utc(2027, 3, 26), utc(2027, 3, 30))
    assert events == [
        (utc(2027, 3, 26, 7), "resume"), (utc(2027, 3, 26, 17), "pause"),
        (utc(2027, 3, 29, 6), "resume"), (utc(2027, 3, 29, 16), "pause"),
    ]


def test_berlin_transitions_move_back_across_the_autumn_change():
    events = parse_active_hours(BERLIN).transitions(utc(2027, 10, 29), utc(2027, 11, 2))
    assert events == [
        (utc(2027, 10, 29, 6), "resume"), (utc(2027, 10, 29, 16), "pause"),
        (utc(2027, 11, 1, 7), "resume"), (utc(2027, 11, 1, 17), "pause"),
    ]


def test_new_york_transitions_follow_the_us_dates():
    hours = parse_active_hours("Mon,Fri 09:00-17:00 America/New_York")
    assert [at for at, what in hours.transitions(utc(2027, 3, 12), utc(2027, 3, 16)) if what == "resume"] == [
        utc(2027, 3, 12, 14), utc(2027, 3, 15, 13)]  # EST (UTC-5), then EDT (UTC-4)
    assert [at for at, what in hours.transitions(utc(2027, 11, 5), utc(2027, 11, 9)) if what == "resume"] == [
        utc(2027, 11, 5, 13), utc(2027, 11, 8, 14)]


def test_transitions_are_limited_to_the_range_and_in_order():
    events = parse_active_hours(BERLIN).transitions(utc(2027, 1, 15, 12), utc(2027, 1, 18, 7))
    assert events == [(utc(2027, 1, 15, 17), "pause")]  # Monday's 07:00Z resume is the range's end: excluded
    assert parse_active_hours(BERLIN).transitions(utc(2027, 1, 15, 17), utc(2027, 1, 18, 7, 1)) == [
        (utc(2027, 1, 15, 17), "pause"), (utc(2027, 1, 18, 7), "resume")]


@pytest.mark.parametrize("text, day, opens, closes, hours", [
    # Berlin spring: 01:00 CET = 00:00Z, then 02:00 CET jumps to 03:00 CEST, 04:00 CEST = 02:00Z: 2 h.
    ("Sun 01:00-04:00 Europe/Berlin", (2027, 3, 28), utc(2027, 3, 28, 0), utc(2027, 3, 28, 2), 2),
    # Berlin autumn: 01:00 CEST = 23:00Z the day before, 03:00 CEST falls back to 02:00 CET, 04:00 CET = 03:00Z.
    ("Sun 01:00-04:00 Europe/Berlin", (2027, 10, 31), utc(2027, 10, 30, 23), utc(2027, 10, 31, 3), 4),
    # New York: 00:00 EST = 05:00Z to 06:00 EDT = 10:00Z; 00:00 EDT = 04:00Z to 06:00 EST = 11:00Z.
    ("Sun 00:00-06:00 America/New_York", (2027, 3, 14), utc(2027, 3, 14, 5), utc(2027, 3, 14, 10), 5),
    ("Sun 00:00-06:00 America/New_York", (2027, 11, 7), utc(2027, 11, 7, 4), utc(2027, 11, 7, 11), 7),
])
def test_dst_change_days_count_their_real_length(text, day, opens, closes, hours):
    schedule = parse_active_hours(text)
    events = schedule.transitions(opens, closes.replace(minute=1))
    assert events == [(opens, "resume"), (closes, "pause")]
    assert (closes - opens).total_seconds() / 3600 == hours


def test_a_start_skipped_by_the_spring_change_fires_an_hour_later_in_wall_clock():
    # 02:30 does not exist in Berlin on 2027-03-28; read with the pre-change offset it is 01:30Z = 03:30 CEST.
    events = parse_active_hours("Sun 02:30-05:00 Europe/Berlin").transitions(utc(2027, 3, 28), utc(2027, 3, 29))
    assert events[0] == (utc(2027, 3, 28, 1, 30), "resume")


@pytest.mark.parametrize("text, per_month", [
    (BERLIN, 10 * 261 / 12),                                      # 217.5
    ("Mon,Wed,Fri 09:00-12:30 America/New_York", 3.5 * (52 + 52 + 53) / 12),  # 45.79
    # 52 Sundays of 3 h, one of them 2 h (spring) and one 4 h (autumn): 156 h.
    ("Sun 01:00-04:00 Europe/Berlin", 156 / 12),
    ("Mon-Sun 00:00-23:59 UTC", 365 * (23 + 59 / 60) / 12),
])
def test_average_active_hours_per_month(text, per_month):
    assert parse_active_hours(text).average_active_hours_per_month() == pytest.approx(per_month)


@pytest.mark.parametrize("text, action, cron", [
    (BERLIN, "resume", "0 8 * * 1,2,3,4,5"),
    (BERLIN, "pause", "0 18 * * 1,2,3,4,5"),
    ("Sat-Sun 09:15-12:45 UTC", "pause", "45 12 * * 6,0"),
])
def test_cron_is_unix_cron_with_sunday_zero(text, action, cron):
    assert parse_active_hours(text).cron(action) == cron
