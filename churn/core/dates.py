"""Dates: the one parser of ``--ds`` / ``--start`` / ``--end`` and the one enumeration of days."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")  # what a person types: 2026-03-01, never 20260301 or 2026-3-1


class DateRangeError(ValueError):
    """A day or range given by a user is unusable; the message says which option and why."""


def as_date(value: date | datetime | str) -> date:
    """A date from a date, an aware or naive datetime (UTC), or an ISO string (``2026-03-01``, ``2026-03-01T00:00``)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise DateRangeError(f"{value!r} is not a date: use YYYY-MM-DD") from None


def parse_day(text: str | date, option: str = "date") -> date:
    """A day a person typed (``--ds``, ``--start`` …): exactly YYYY-MM-DD and a real day of the calendar."""
    if isinstance(text, date):
        return as_date(text)
    if not ISO_DAY.fullmatch(str(text).strip()):
        raise DateRangeError(f"{option} {str(text)!r} is not a date: use YYYY-MM-DD (e.g. 2026-03-01)")
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise DateRangeError(f"{option} {str(text)!r} is not a date of the calendar ({exc})") from None


def nearest_days(wanted: Iterable[date], existing: Iterable[date], limit: int = 2) -> str:
    """Which days do exist, for a "no data" error: the range held and the existing days nearest the wanted ones,
    e.g. ``days held: 2026-01-01..2026-03-01 (60 days); nearest: 2026-03-01``."""
    have = sorted({as_date(d) for d in existing})
    if not have:
        return "no day is held yet"
    want = sorted({as_date(d) for d in wanted})
    near = sorted({d for w in want for d in sorted(have, key=lambda d: (abs((d - w).days), d))[:limit]
                   if d not in want})[:limit * 2]
    held = f"days held: {describe_days(have)}"
    return held + (f"; nearest: {', '.join(map(str, near))}" if near and len(have) > 1 else "")


def days(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included."""
    if end < start:
        raise DateRangeError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def parse_range(ds: str | date | None = None, start: str | date | None = None, end: str | date | None = None) -> tuple[date, date]:
    """``--ds D`` → (D, D); ``--start A --end B`` → (A, B). Anything else is a :class:`DateRangeError`."""
    if ds and (start or end):
        raise DateRangeError("give either --ds or --start/--end, not both")
    if ds:
        day = parse_day(ds, "--ds")
        return day, day
    if not (start and end):
        raise DateRangeError("give --ds D, or --start A and --end B")
    first, last = parse_day(start, "--start"), parse_day(end, "--end")
    if last < first:
        raise DateRangeError(f"--end {last} is before --start {first}")
    return first, last


def describe_days(values) -> str:
    """Days as runs, for one log line instead of one per day: ``2026-01-01..2026-01-10, 2026-01-15 (11 days)``."""
    ordered = sorted({as_date(v) for v in values})
    if not ordered:
        return "no days"
    runs, first, last = [], ordered[0], ordered[0]
    for day in ordered[1:]:
        if day == last + timedelta(days=1):
            last = day
            continue
        runs.append((first, last))
        first = last = day
    runs.append((first, last))
    shown = [f"{a}..{b}" if a != b else str(a) for a, b in runs]
    text = ", ".join(shown[:4]) + (f", … ({len(shown) - 4} more runs)" if len(shown) > 4 else "")
    return text + (f" ({len(ordered)} days)" if len(ordered) > 1 else "")


def encode_days(days: Iterable[date]) -> str:
    """Days as compact ranges: ``2026-01-01/2026-03-31,2026-04-02/2026-04-02``."""
    ranges: list[list[date]] = []
    for day in sorted(set(days)):
        if ranges and day - ranges[-1][1] == timedelta(days=1):
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return ",".join(f"{a.isoformat()}/{b.isoformat()}" for a, b in ranges)


def decode_days(text: str | None) -> list[date]:
    out: list[date] = []
    for part in (text or "").split(","):
        if part:
            first, last = (date.fromisoformat(x) for x in part.split("/"))
            out += [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return out
