"""When an instance was acquired, read from its DICOM JSON: the time an ECG was taken feeds
a chest-pain case's first-contact-to-ECG interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

# (date-time) or (date, time) attributes, in order of preference: when the ECG was acquired.
_WHEN = (("0008002A",), ("00080022", "00080032"), ("00080023", "00080033"),
         ("00080021", "00080031"), ("00080020", "00080030"))


def _value(meta: dict[str, object], tag: str) -> str:
    element = meta.get(tag)
    if isinstance(element, dict):
        values = element.get("Value")
        if isinstance(values, list) and values and isinstance(values[0], str):
            return values[0].strip()
    return ""


def _parse_when(date_time: str, offset: str, default_zone: ZoneInfo) -> datetime | None:
    """A DICOM DT (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``) as an aware datetime, or None."""
    text = date_time
    zone = offset or ""
    for sign in ("+", "-"):
        if sign in text[8:]:
            cut = text.rindex(sign)
            text, zone = text[:cut], text[cut:]
    main, _, frac = text.partition(".")
    if len(main) < 12 or not main.isdigit():
        return None
    main = main[:14].ljust(14, "0")
    try:
        when = datetime.strptime(main, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if frac.isdigit():
        when = when.replace(microsecond=int(frac[:6].ljust(6, "0")))
    if len(zone) == 5 and zone[1:].isdigit():
        minutes = int(zone[1:3]) * 60 + int(zone[3:5])
        tz = timezone(timedelta(minutes=minutes if zone[0] == "+" else -minutes))
        return when.replace(tzinfo=tz).astimezone(UTC)
    return when.replace(tzinfo=default_zone).astimezone(UTC)


def acquired_at(meta: dict[str, object], default_zone: ZoneInfo) -> datetime | None:
    """When an instance was acquired, from its DICOM JSON (its offset, else ``default_zone``)."""
    offset = _value(meta, "00080201")
    for tags in _WHEN:
        text = "".join(_value(meta, tag) for tag in tags)
        if len(tags) == 2 and not _value(meta, tags[1]):
            continue
        when = _parse_when(text, offset, default_zone) if text else None
        if when is not None:
            return when
    return None
