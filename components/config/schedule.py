"""`activeHours`: the weekly window a stack is awake, e.g. `Mon-Fri 08:00-18:00 Europe/Berlin`.

A window is local wall-clock time in an IANA time zone, so it follows daylight saving time: a Berlin 08:00
is 07:00 UTC in winter and 06:00 UTC in summer. Cloud Scheduler takes the same zone (`time_zone` on the
job) and applies DST itself; `transitions` reproduces the instants it fires at for tests and the rehearsal.

One window per day, start and end on the same local day: an overnight window (`22:00-06:00`) is refused
(the pause and resume jobs would fire on different days, and no stack here needs it). Times are minutes of
a 24-hour clock, 00:00 to 23:59.

The tz database comes from the system (/usr/share/zoneinfo) or the PyPI `tzdata` package, which
requirements.txt pins so a fresh machine without system zone files can still parse a zone
(https://docs.python.org/3/library/zoneinfo.html#data-sources).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # index = datetime.weekday()
EXAMPLE = "Mon-Fri 08:00-18:00 Europe/Berlin"
# Reference year for the monthly average: a whole calendar year of real instants (2027 has 261 weekdays
# and both European DST changes on Sundays, 2027-03-28 and 2027-10-31).
REFERENCE_YEAR = 2027

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class ActiveHours:
    days: tuple[int, ...]  # weekday numbers, Monday = 0, sorted, unique
    start: time
    end: time
    tz: str  # IANA name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def __str__(self) -> str:
        return f"{_days_text(self.days)} {self.start:%H:%M}-{self.end:%H:%M} {self.tz}"

    def is_active(self, at: datetime) -> bool:
        """Whether the stack should be awake at `at` (an aware datetime)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"is_active needs an aware datetime, got naive {at.isoformat()}")
        local = at.astimezone(self.zone)
        return local.weekday() in self.days and self.start <= local.time().replace(tzinfo=None) < self.end

    def window_on(self, day: date) -> tuple[datetime, datetime]:
        """The UTC instants the window opens and closes on local `day` (whether or not `day` is active)."""
        return (_instant(day, self.start, self.zone), _instant(day, self.end, self.zone))

    def transitions(self, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
        """("resume"|"pause") UTC instants with start <= instant < end, in time order."""
        zone = self.zone
        first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        events = []
        day = first - timedelta(days=1)
        while day <= last + timedelta(days=1):
            if day.weekday() in self.days:
                opens, closes = self.window_on(day)
                events += [(opens, "resume"), (closes, "pause")]
            day += timedelta(days=1)
        return sorted((at, what) for at, what in events if start <= at < end)

    def active_hours_in_year(self, year: int = REFERENCE_YEAR) -> float:
        """Awake hours over the calendar year, counted between real instants: a window spanning a DST change
        is an hour shorter (spring) or longer (autumn) than its wall-clock length."""
        total = timedelta()
        day = date(year, 1, 1)
        while day.year == year:
            if day.weekday() in self.days:
                opens, closes = self.window_on(day)
                total += closes - opens
            day += timedelta(days=1)
        return total.total_seconds() / 3600

    def average_active_hours_per_month(self, year: int = REFERENCE_YEAR) -> float:
        return self.active_hours_in_year(year) / 12

    def cron(self, action: str) -> str:
        """unix-cron for the Cloud Scheduler job firing `action` ("resume" at the start, "pause" at the end),
        read in `tz` by Cloud Scheduler. Day of week 0-6 is Sunday-Saturday
        (https://cloud.google.com/scheduler/docs/configuring/cron-job-schedules)."""
        at = {"resume": self.start, "pause": self.end}[action]
        return f"{at.minute} {at.hour} * * {','.join(str((d + 1) % 7) for d in self.days)}"


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    # A wall-clock time skipped by a spring change (02:30 in Berlin on 2027-03-28) reads with the offset in
    # force before the change (PEP 495, fold=0), i.e. the instant an hour after the skipped time.
    return datetime.combine(day, at, tzinfo=zone).astimezone(timezone.utc)


def _days_text(days: tuple[int, ...]) -> str:
    return ",".join(DAY_NAMES[d] for d in days)


def _fail(text: str, why: str) -> ValueError:
    return ValueError(f"{text!r} is not an active-hours window: {why}. Write DAYS HH:MM-HH:MM TIMEZONE, "
                      f"e.g. {EXAMPLE!r} or 'Mon,Wed,Fri 09:00-17:30 America/New_York'")


def _parse_day(token: str, text: str) -> int:
    for index, name in enumerate(DAY_NAMES):
        if token.lower() == name.lower():
            return index
    raise _fail(text, f"{token!r} is not a day (use {', '.join(DAY_NAMES)})")


def _parse_days(field: str, text: str) -> tuple[int, ...]:
    days: set[int] = set()
    for part in field.split(","):
        first, dash, last = part.partition("-")
        if not dash:
            days.add(_parse_day(first, text))
            continue
        low, high = _parse_day(first, text), _parse_day(last, text)
        if high < low:
            raise _fail(text, f"day range {part!r} runs backwards (ranges go Mon to Sun; list wrapping days "
                              f"instead, e.g. Fri,Sat,Sun,Mon)")
        days.update(range(low, high + 1))
    return tuple(sorted(days))


def _parse_time(token: str, text: str) -> time:
    match = _TIME.match(token)
    if not match:
        raise _fail(text, f"{token!r} is not a 24-hour time HH:MM from 00:00 to 23:59")
    return time(int(match.group(1)), int(match.group(2)))


def _parse_zone(name: str, text: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(text, f"{name!r} is not an IANA time zone (such as Europe/Berlin, America/New_York, UTC)") \
            from None
    return name


def parse_active_hours(text: str) -> ActiveHours:
    """Parse `DAYS HH:MM-HH:MM TIMEZONE`; raise ValueError saying what is wrong, with an example."""
    fields = str(text).split()
    if len(fields) != 3:
        raise _fail(text, "expected three parts separated by spaces: days, times, time zone")
    day_field, time_field, zone_field = fields
    days = _parse_days(day_field, text)
    start_text, dash, end_text = time_field.partition("-")
    if not dash:
        raise _fail(text, f"{time_field!r} is not a time range HH:MM-HH:MM")
    start, end = _parse_time(start_text, text), _parse_time(end_text, text)
    if end == start:
        raise _fail(text, "the window is empty (start equals end)")
    if end < start:
        raise _fail(text, f"{start:%H:%M}-{end:%H:%M} ends before it starts; overnight windows are not "
                          f"supported, the window must start and end on the same day")
    return ActiveHours(days=days, start=start, end=end, tz=_parse_zone(zone_field, text))
