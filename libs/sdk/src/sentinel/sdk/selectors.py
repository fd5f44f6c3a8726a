"""Parsing of series selectors (`llm.latency_ms{service="chat",model=~"gpt-.*"}`), times and steps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_SELECTOR = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.:-]*)\s*(?:\{(?P<body>.*)\})?\s*$")
_MATCHER = re.compile(
    r'\s*(?P<label>[A-Za-z_][A-Za-z0-9_.:-]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*'
)
_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Matcher:
    """One label matcher: `op` is one of =, !=, =~, !~."""

    label: str
    op: str
    value: str


def parse_selector(text: str) -> tuple[str, list[Matcher]]:
    """Split a selector into its metric name (may be empty) and label matchers.

    Raises:
        ValueError: the text is not a selector.
    """
    match = _SELECTOR.match(text)
    if not match:
        raise ValueError(f"not a series selector: {text!r}")
    name, body = match.group("name"), match.group("body")
    matchers: list[Matcher] = []
    if body and body.strip():
        position = 0
        while position < len(body):
            found = _MATCHER.match(body, position)
            if not found:
                raise ValueError(f"bad label matcher at {body[position:]!r}")
            value = bytes(found.group("value"), "utf-8").decode("unicode_escape")
            matchers.append(Matcher(found.group("label"), found.group("op"), value))
            position = found.end()
            if position < len(body):
                if body[position] != ",":
                    raise ValueError(f"expected ',' at {body[position:]!r}")
                position += 1
    if not name and not matchers:
        raise ValueError("a selector needs a metric name or at least one matcher")
    return name, matchers


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `1.5h`, `7d`, `250ms` to a timedelta."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h, 7d)")
    return timedelta(seconds=float(match.group("n")) * _UNITS[match.group("unit")])


def parse_time(text: str, *, now: datetime) -> datetime:
    """`now`, `-1h` (relative to now), epoch seconds, or ISO-8601 (naive means UTC)."""
    text = text.strip()
    if text == "now":
        return now
    if text.startswith("-"):
        return now - parse_duration(text[1:])
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
