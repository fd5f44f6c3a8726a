"""Reading untrusted JSON: every problem is an `InvalidArgumentError` naming the field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sentinel.incident_manager.domain.model import LabelMatcher, MatchOperator
from sentinel.runtime.errors import InvalidArgumentError

_FRACTION = re.compile(r"\.(\d+)")
# Go's zero time, which Alertmanager sends for "no end".
_ZERO_YEAR = 1


def obj(value: Any, field: str) -> dict[str, Any]:
    """`value` as a JSON object."""
    if not isinstance(value, dict):
        raise InvalidArgumentError(field, f"must be a JSON object, not {_kind(value)}")
    return value


def array(value: Any, field: str) -> list[Any]:
    """`value` as a JSON array."""
    if not isinstance(value, list):
        raise InvalidArgumentError(field, f"must be a JSON array, not {_kind(value)}")
    return value


def text(body: Mapping[str, Any], name: str, field: str, *, required: bool = False) -> str:
    """`body[name]` as a string ("" when absent and not required)."""
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidArgumentError(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidArgumentError(field, f"must be a string, not {_kind(value)}")
    if required and not value.strip():
        raise InvalidArgumentError(field, "must not be empty")
    return value


def boolean(body: Mapping[str, Any], name: str, field: str, *, default: bool) -> bool:
    """`body[name]` as a boolean."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidArgumentError(field, f"must be true or false, not {_kind(value)}")
    return value


def string_map(value: Any, field: str, *, required: bool = False) -> dict[str, str]:
    """A JSON object of string values (labels, annotations)."""
    if value is None:
        if required:
            raise InvalidArgumentError(field, "is required")
        return {}
    mapping = obj(value, field)
    if required and not mapping:
        raise InvalidArgumentError(field, "must not be empty")
    for key, item in mapping.items():
        if not isinstance(item, str):
            raise InvalidArgumentError(f"{field}.{key}", f"must be a string, not {_kind(item)}")
    return dict(mapping)


def timestamp(body: Mapping[str, Any], name: str, field: str) -> datetime | None:
    """An RFC 3339 time (nanoseconds allowed); absent, empty or Go's zero time is None."""
    value = text(body, name, field)
    if not value:
        return None
    cleaned = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.strip(), count=1)
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidArgumentError(field, f"{value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise InvalidArgumentError(field, f"{value!r} has no time zone")
    if parsed.year == _ZERO_YEAR:
        return None
    return parsed.astimezone(UTC)


def rfc3339(value: datetime | None) -> str:
    """A time as Alertmanager writes it (UTC, "Z"); None is Go's zero time."""
    if value is None:
        return "0001-01-01T00:00:00.000Z"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_OPERATORS = {
    (False, True): MatchOperator.EQUAL,
    (False, False): MatchOperator.NOT_EQUAL,
    (True, True): MatchOperator.REGEX,
    (True, False): MatchOperator.NOT_REGEX,
}
_FLAGS = {operator: flags for flags, operator in _OPERATORS.items()}


def api_matcher(value: Any, field: str) -> LabelMatcher:
    """An Alertmanager API v2 matcher `{name, value, isRegex, isEqual}` (isEqual defaults to true)."""
    body = obj(value, field)
    name = text(body, "name", f"{field}.name", required=True)
    if "value" not in body:
        raise InvalidArgumentError(f"{field}.value", "is required")
    pattern = text(body, "value", f"{field}.value")
    if "isRegex" not in body:
        raise InvalidArgumentError(f"{field}.isRegex", "is required")
    is_regex = boolean(body, "isRegex", f"{field}.isRegex", default=False)
    is_equal = boolean(body, "isEqual", f"{field}.isEqual", default=True)
    return LabelMatcher(name, _OPERATORS[(is_regex, is_equal)], pattern)


def api_matcher_json(matcher: LabelMatcher) -> dict[str, Any]:
    """The API v2 form of a matcher."""
    is_regex, is_equal = _FLAGS[matcher.operator]
    return {"name": matcher.name, "value": matcher.value, "isRegex": is_regex, "isEqual": is_equal}


_FILTER = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
_FILTER_OPERATORS = {
    "=": MatchOperator.EQUAL,
    "!=": MatchOperator.NOT_EQUAL,
    "=~": MatchOperator.REGEX,
    "!~": MatchOperator.NOT_REGEX,
}


def filter_matcher(value: str, field: str) -> LabelMatcher:
    """A `filter` query parameter, e.g. `alertname="Foo"` or `env=~"prod|stage"`."""
    match = _FILTER.match(value.strip().strip("{}"))
    if match is None:
        raise InvalidArgumentError(field, f'{value!r} is not a matcher like name="value"')
    name, operator, raw = match.groups()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return LabelMatcher(name, _FILTER_OPERATORS[operator], raw)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
