"""Validation and normalisation: raw rows in, canonical events and samples out, or `RowRejected`.

Pure (no I/O, no clock: `now_ns` is a parameter). The reasons are part of the contract: they reach
clients in `RowError.reason` and in INVALID_ARGUMENT messages, e.g.
`events[17].latency_ms: must be finite and >= 0`.

Policy for bad rows (see ingestion_service.proto): a bad row is rejected on its own and reported
with its index, field and reason; the other rows of the batch are accepted. Problems of the batch
as a whole (column lengths, size limits) raise `InvalidArgumentError` instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from sentinel.ingestion.domain.model import (
    LabelTuple,
    Limits,
    LlmEvent,
    RawLlmEvent,
    RawSample,
    RowError,
    RowRejected,
    SeriesKeyTuple,
)
from sentinel.runtime.errors import InvalidArgumentError

_SERIES_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
_HEX = re.compile(r"[0-9a-f]+")
_HTTP_2XX = re.compile(r"2\d\d")
_OK_STATUSES = frozenset({"", "ok", "success"})
_INF = math.inf


def _number(x: float) -> str:
    """A limit as text: 600000, not 600000.0 nor 6e+05."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


# --------------------------------------------------------------------------------------------
# Field checks (each raises RowRejected naming the canonical field)
# --------------------------------------------------------------------------------------------


def _check_str(field: str, value: str | None, max_len: int) -> str:
    if not value:
        return ""
    if len(value) > max_len:
        raise RowRejected(field, f"longer than {max_len} characters")
    return value


def _check_float(field: str, value: float | None, max_value: float) -> float | None:
    if value is None:
        return None
    if not 0.0 <= value < _INF:  # False for NaN as well
        raise RowRejected(field, "must be finite and >= 0")
    if value > max_value:
        raise RowRejected(field, f"must be <= {_number(max_value)}")
    return float(value)


def _check_tokens(field: str, value: int | None, max_value: int) -> int | None:
    if value is None:
        return None
    if value < 0:
        raise RowRejected(field, "must be >= 0")
    if value > max_value:
        raise RowRejected(field, f"must be <= {max_value}")
    return value


def check_time(field: str, time_ns: int, *, now_ns: int, limits: Limits) -> int:
    """Return `time_ns` if it lies within the accepted window around `now_ns`, else raise."""
    if time_ns > now_ns + int(limits.max_future_s * 1e9):
        raise RowRejected(field, f"too far in the future (> {_number(limits.max_future_s)} s ahead)")
    if time_ns < now_ns - int(limits.max_past_s * 1e9):
        raise RowRejected(field, f"too old (> {_number(limits.max_past_s)} s)")
    return time_ns


def _check_hex_id(field: str, value: str | None, length: int) -> str:
    if not value:
        return ""
    lowered = value.lower()
    if len(lowered) != length or _HEX.fullmatch(lowered) is None:
        raise RowRejected(field, f"must be {length} hex characters")
    return lowered


def _check_metadata(metadata: Mapping[str, str], limits: Limits) -> dict[str, str]:
    if len(metadata) > limits.max_metadata_entries:
        raise RowRejected("metadata", f"more than {limits.max_metadata_entries} entries")
    for key, value in metadata.items():
        if not key:
            raise RowRejected("metadata", "keys must not be empty")
        if len(key) > limits.max_label_key_len:
            raise RowRejected("metadata", f"key longer than {limits.max_label_key_len} characters")
        if len(value) > limits.max_string_len:
            raise RowRejected(f"metadata.{key}", f"longer than {limits.max_string_len} characters")
    return dict(metadata)


def status_is_ok(status: str) -> bool:
    """Whether a status text means success: empty, "ok", "success" or an HTTP 2xx code."""
    if not status:
        return True
    status = status.strip().lower()
    return status in _OK_STATUSES or _HTTP_2XX.fullmatch(status) is not None


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


def normalise_event(
    raw: RawLlmEvent, *, now_ns: int, limits: Limits, id_factory: Callable[[], str]
) -> LlmEvent:
    """Validate one raw LLM call and return the canonical event.

    Defaults: a missing event id becomes the request id, else `id_factory()`; a missing time
    becomes `now_ns`; an empty service becomes "unknown"; a missing total becomes prompt +
    completion when both are known. `is_error` unless given is true when there is an error type
    or message, or the status is not ok (see `status_is_ok`).

    Raises:
        RowRejected: With the canonical field (e.g. "latency_ms") and `form` = `raw.source`.
    """
    try:
        return _normalise_event(raw, now_ns, limits, id_factory)
    except RowRejected as exc:
        if exc.form is None:
            exc.form = raw.source
        raise


def _normalise_event(
    raw: RawLlmEvent, now_ns: int, limits: Limits, id_factory: Callable[[], str]
) -> LlmEvent:
    model = raw.model
    if not model or model.isspace():
        raise RowRejected("model", "must not be empty")
    _check_str("model", model, limits.max_name_len)

    request_id = _check_str("request_id", raw.request_id, limits.max_id_len)
    if raw.event_id:
        event_id = _check_str("event_id", raw.event_id, limits.max_id_len)
    else:
        event_id = request_id or id_factory()

    time_ns = raw.time_ns
    if time_ns is None:
        time_ns = now_ns
    else:
        check_time("time", time_ns, now_ns=now_ns, limits=limits)

    prompt = _check_tokens("prompt_tokens", raw.prompt_tokens, limits.max_tokens)
    completion = _check_tokens("completion_tokens", raw.completion_tokens, limits.max_tokens)
    total = _check_tokens("total_tokens", raw.total_tokens, limits.max_tokens)
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion

    error_type = _check_str("error_type", raw.error_type, limits.max_name_len)
    error_message = (raw.error_message or "")[: limits.max_error_message_len]
    status = _check_str("status", raw.status, limits.max_name_len)
    is_error = raw.is_error
    if is_error is None:
        is_error = bool(error_type or error_message) or not status_is_ok(status)

    return LlmEvent(
        event_id=event_id,
        time_ns=time_ns,
        service=_check_str("service", raw.service, limits.max_name_len) or "unknown",
        model=model,
        provider=_check_str("provider", raw.provider, limits.max_label_key_len),
        trace_id=_check_hex_id("trace_id", raw.trace_id, 32),
        span_id=_check_hex_id("span_id", raw.span_id, 16),
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        latency_ms=_check_float("latency_ms", raw.latency_ms, limits.max_latency_ms),
        ttft_ms=_check_float("ttft_ms", raw.ttft_ms, limits.max_ttft_ms),
        cost_usd=_check_float("cost_usd", raw.cost_usd, limits.max_cost_usd),
        is_error=is_error,
        error_type=error_type,
        error_message=error_message,
        status=status,
        finish_reason=_check_str("finish_reason", raw.finish_reason, limits.max_name_len),
        user_id=_check_str("user_id", raw.user_id, limits.max_name_len),
        session_id=_check_str("session_id", raw.session_id, limits.max_name_len),
        request_id=request_id,
        metadata=_check_metadata(raw.metadata, limits) if raw.metadata else {},
        source=raw.source,
    )


# --------------------------------------------------------------------------------------------
# Samples and series keys
# --------------------------------------------------------------------------------------------


def series_problem(name: str, labels: Mapping[str, str], limits: Limits) -> tuple[str, str] | None:
    """The first problem of a series key as (field, reason), field "name" or "labels"; or None."""
    if not name:
        return "name", "must not be empty"
    if len(name) > limits.max_name_len:
        return "name", f"longer than {limits.max_name_len} characters"
    if _SERIES_NAME.fullmatch(name) is None:
        return "name", "must contain only [A-Za-z0-9_.:-]"
    if len(labels) > limits.max_labels:
        return "labels", f"more than {limits.max_labels} labels"
    for key, value in labels.items():
        if not key:
            return "labels", "label keys must not be empty"
        if len(key) > limits.max_label_key_len:
            return "labels", f"label key longer than {limits.max_label_key_len} characters"
        if len(value) > limits.max_label_value_len:
            return "labels", f"value of label {key!r} longer than {limits.max_label_value_len} characters"
    return None


def series_key(name: str, labels: Mapping[str, str]) -> SeriesKeyTuple:
    """The canonical (hashable) key of a series: name and labels sorted by key."""
    return name, tuple(sorted(labels.items()))


def normalise_sample(raw: RawSample, *, now_ns: int, limits: Limits) -> tuple[str, LabelTuple, int, float]:
    """Validate one generic sample; return (name, sorted labels, time_ns, value).

    Raises:
        RowRejected: With field "name", "labels", "sample_time" or "value" and `form` =
            `raw.source`.
    """
    try:
        problem = series_problem(raw.name, raw.labels, limits)
        if problem is not None:
            raise RowRejected(*problem)
        value = raw.value
        if isinstance(value, bool):
            raise RowRejected("value", "must be a number, not a boolean")
        if not isinstance(value, int | float):
            raise RowRejected("value", "must be a number")
        try:
            number = float(value)
        except OverflowError:
            number = _INF
        if not math.isfinite(number):
            raise RowRejected("value", "must be finite")
        time_ns = raw.time_ns
        if time_ns is None:
            time_ns = now_ns
        else:
            check_time("sample_time", time_ns, now_ns=now_ns, limits=limits)
    except RowRejected as exc:
        if exc.form is None:
            exc.form = raw.source
        raise
    name, labels = series_key(raw.name, raw.labels)
    return name, labels, time_ns, number


def validate_columnar(
    series: Sequence[tuple[str, Mapping[str, str]]],
    series_index: npt.NDArray[Any],
    time_ns: npt.NDArray[Any],
    value: npt.NDArray[Any],
    *,
    now_ns: int,
    limits: Limits,
) -> tuple[npt.NDArray[np.bool_], list[RowError]]:
    """Validate a columnar batch without a per-point Python loop.

    Args:
        series: The series table, (name, labels) per entry.
        series_index: Shape (n,), integer: per point, an index into `series`.
        time_ns: Shape (n,), int64: per point, nanoseconds since the Unix epoch.
        value: Shape (n,), float64: per point, the value.
        now_ns: The server clock.
        limits: The limits.

    Returns:
        `keep`, shape (n,) bool, true for accepted points, and one RowError per rejected point
        (in point order) with field "series_index", "series[i].name", "series[i].labels",
        "time_unix_nano" or "value", checked in that order (a point reports its first problem).
        A bad series rejects every point that references it.

    Raises:
        InvalidArgumentError: Columns of different lengths (reason "COLUMN_LENGTH_MISMATCH",
            field "batch.time_unix_nano" or "batch.value"), more points or series than the limits
            (reason "BATCH_TOO_LARGE", field "batch" or "batch.series").
    """
    n = len(series_index)
    for field, column in (("batch.time_unix_nano", time_ns), ("batch.value", value)):
        if len(column) != n:
            raise InvalidArgumentError(
                field,
                f"has {len(column)} entries but series_index has {n}",
                reason="COLUMN_LENGTH_MISMATCH",
            )
    if n > limits.max_points_per_batch:
        raise InvalidArgumentError(
            "batch", f"{n} points, more than {limits.max_points_per_batch}", reason="BATCH_TOO_LARGE"
        )
    n_series = len(series)
    if n_series > limits.max_series_per_batch:
        raise InvalidArgumentError(
            "batch.series",
            f"{n_series} series, more than {limits.max_series_per_batch}",
            reason="BATCH_TOO_LARGE",
        )

    index = np.asarray(series_index)
    times = np.asarray(time_ns, dtype=np.int64)
    values = np.asarray(value, dtype=np.float64)

    problems = [series_problem(name, labels, limits) for name, labels in series]
    index_bad = (index >= n_series) | (index < 0) if index.dtype.kind == "i" else index >= n_series
    if n_series:
        bad_series = np.fromiter((p is not None for p in problems), dtype=np.bool_, count=n_series)
        series_bad = bad_series[np.where(index_bad, 0, index)] & ~index_bad
    else:
        series_bad = np.zeros(n, dtype=np.bool_)
    too_new = times > now_ns + int(limits.max_future_s * 1e9)
    too_old = times < now_ns - int(limits.max_past_s * 1e9)
    value_bad = ~np.isfinite(values)
    rejected = index_bad | series_bad | too_new | too_old | value_bad
    keep = ~rejected
    if keep.all():
        return keep, []

    # Only rejected points reach Python objects.
    positions = np.flatnonzero(rejected)
    future_reason = f"too far in the future (> {_number(limits.max_future_s)} s ahead)"
    old_reason = f"too old (> {_number(limits.max_past_s)} s)"
    index_reason = f"must be < {n_series} (the number of series)"
    errors: list[RowError] = []
    for i, ib, sb, tn, to, s in zip(
        positions.tolist(),
        index_bad[positions].tolist(),
        series_bad[positions].tolist(),
        too_new[positions].tolist(),
        too_old[positions].tolist(),
        index[positions].tolist(),
        strict=True,
    ):
        if ib:
            errors.append(RowError(i, "series_index", index_reason))
        elif sb:
            problem = problems[s]
            assert problem is not None
            field, reason = problem
            errors.append(RowError(i, f"series[{s}].{field}", reason))
        elif tn:
            errors.append(RowError(i, "time_unix_nano", future_reason))
        elif to:
            errors.append(RowError(i, "time_unix_nano", old_reason))
        else:
            errors.append(RowError(i, "value", "must be finite"))
    return keep, errors


# --------------------------------------------------------------------------------------------
# JSON rows (google.protobuf.Struct or JSONL, already decoded to Python values)
# --------------------------------------------------------------------------------------------

# lowerCamelCase (the proto JSON mapping) -> snake_case, for the keys we read.
_ALIASES = {
    "eventId": "event_id",
    "eventTime": "event_time",
    "serviceName": "service_name",
    "modelName": "model_name",
    "traceId": "trace_id",
    "spanId": "span_id",
    "latencyMs": "latency_ms",
    "ttftMs": "ttft_ms",
    "costUsd": "cost_usd",
    "promptTokens": "prompt_tokens",
    "completionTokens": "completion_tokens",
    "totalTokens": "total_tokens",
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "userId": "user_id",
    "sessionId": "session_id",
    "requestId": "request_id",
    "finishReason": "finish_reason",
    "isError": "is_error",
    "sampleTime": "sample_time",
}
# Keys that make a JSON object an LLM call (nested or flat); time keys are shared with samples.
_EVENT_KEYS = frozenset(
    {
        "model",
        "model_name",
        "event_id",
        "service_name",
        "service",
        "provider",
        "trace_id",
        "span_id",
        "prompt",
        "response",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "input_tokens",
        "output_tokens",
        "usage",
        "latency_ms",
        "ttft_ms",
        "cost_usd",
        "errors",
        "error",
        "is_error",
        "status",
        "finish_reason",
        "user_id",
        "session_id",
        "request_id",
    }
)
_SAMPLE_KEYS = frozenset({"name", "series", "value", "labels"})
_EVENT_TIME_KEYS = ("timestamp", "event_time", "time", "start_time")
_SAMPLE_TIME_KEYS = ("time", "sample_time", "timestamp")
_ISO_FRACTION = re.compile(
    r"(?P<head>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})[.,](?P<fraction>\d+)(?P<zone>.*)"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TIME_REASON = "must be an ISO-8601 time or a number of epoch seconds, ms, µs or ns"


def parse_json_event(obj: Mapping[str, Any]) -> RawLlmEvent | RawSample:
    """Detect the form of a decoded JSON object and read it into a raw event or sample.

    Forms: an object with any LLM call key (`model`/`model_name`, `prompt{}`/`response{}`,
    `prompt_tokens`, `latency_ms`, ... ; the nested and flat keys may be mixed, lowerCamelCase
    accepted) is an LLM call; otherwise one with `name`/`series` and `value` is a sample (`series`
    may be a name or a {name, labels} object). Times (`timestamp`, `event_time` or `time` for an
    event; `time`, `sample_time` or `timestamp` for a sample) are ISO-8601 strings (naive means
    UTC, up to nanosecond fractions) or epoch numbers whose unit follows from the magnitude:
    |t| < 1e11 seconds (until the year 5138), < 1e14 milliseconds, < 1e17 microseconds, else
    nanoseconds. JSON numbers that pass through a double (e.g. a protobuf Struct) keep only
    about 0.25 µs of precision as epoch ns; use an ISO string when that matters.

    Raises:
        RowRejected: Wrong value types (field named as in the JSON, e.g. "latency_ms",
            "prompt.tokens") with form "json"; an undetectable form with field "json" and
            form "" (path "json").
    """
    try:
        keys = {_ALIASES.get(k, k): v for k, v in obj.items()}
        if not _EVENT_KEYS.isdisjoint(keys):
            return _json_event(keys)
        if not _SAMPLE_KEYS.isdisjoint(keys):
            return _json_sample(keys)
        raise RowRejected(
            "json",
            'cannot detect the form: expected "model" or "model_name" for an LLM call, '
            'or "name" and "value" for a sample',
            form="",
        )
    except RowRejected as exc:
        if exc.form is None:
            exc.form = "json"
        raise


def _json_str(field: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise RowRejected(field, "must be a string")


def _json_int(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise RowRejected(field, "must be an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise RowRejected(field, "must be an integer")


def _json_float(field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise RowRejected(field, "must be a number, not a boolean")
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return _INF
    raise RowRejected(field, "must be a number")


def _json_object(field: str, value: Any) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    raise RowRejected(field, "must be an object")


def _json_string_map(field: str, value: Any) -> dict[str, str]:
    mapping = _json_object(field, value)
    if not mapping:
        return {}
    out: dict[str, str] = {}
    for key, item in mapping.items():
        if isinstance(item, str):
            out[key] = item
        elif isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, float) and item.is_integer():
            out[key] = str(int(item))  # Struct numbers are doubles: 3.0 was most likely 3
        elif isinstance(item, int | float):
            out[key] = str(item)
        else:
            raise RowRejected(field, "values must be strings, numbers or booleans")
    return out


def parse_time_ns(field: str, value: Any) -> int | None:
    """Read a JSON time (see `parse_json_event`) as ns since the epoch; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RowRejected(field, _TIME_REASON)
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_time_ns(field, int(text))
        except ValueError:
            pass
        try:
            return parse_time_ns(field, float(text))
        except ValueError:
            return _iso_to_ns(field, text)
    if isinstance(value, int):
        magnitude = abs(value)
        if magnitude < 10**11:
            return value * 1_000_000_000
        if magnitude < 10**14:
            return value * 1_000_000
        if magnitude < 10**17:
            return value * 1_000
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RowRejected(field, _TIME_REASON)
        size = abs(value)
        scale = 1e9 if size < 1e11 else 1e6 if size < 1e14 else 1e3 if size < 1e17 else 1.0
        whole = math.floor(value)
        return int(whole) * int(scale) + round((value - whole) * scale)
    raise RowRejected(field, _TIME_REASON)


def _iso_to_ns(field: str, text: str) -> int:
    fraction_ns = 0
    match = _ISO_FRACTION.fullmatch(text)
    if match is not None:
        # datetime keeps microseconds only: parse the fraction ourselves to keep nanoseconds.
        fraction_ns = int(match["fraction"][:9].ljust(9, "0"))
        text = match["head"] + match["zone"]
    if text.endswith("z"):
        text = text[:-1] + "Z"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RowRejected(field, _TIME_REASON) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _MICROSECOND * 1000 + fraction_ns


def _first(keys: Mapping[str, Any], names: Sequence[str]) -> tuple[str, Any]:
    for name in names:
        value = keys.get(name)
        if value is not None:
            return name, value
    return names[0], None


def _json_event(keys: Mapping[str, Any]) -> RawLlmEvent:
    event = RawLlmEvent(source="json")
    event.event_id = _json_str("event_id", keys.get("event_id"))
    event.request_id = _json_str("request_id", keys.get("request_id"))
    field, value = _first(keys, _EVENT_TIME_KEYS)
    event.time_ns = parse_time_ns(field, value)
    field, value = _first(keys, ("service_name", "service"))
    event.service = _json_str(field, value)
    field, value = _first(keys, ("model", "model_name"))
    event.model = _json_str(field, value)
    event.provider = _json_str("provider", keys.get("provider"))
    event.trace_id = _json_str("trace_id", keys.get("trace_id"))
    event.span_id = _json_str("span_id", keys.get("span_id"))

    # Nested objects first, then flat keys, then an OpenAI-style usage object.
    prompt = keys.get("prompt")
    if isinstance(prompt, Mapping):
        event.prompt_tokens = _json_int("prompt.tokens", prompt.get("tokens"))
    elif prompt is not None and not isinstance(prompt, str):  # a string is the prompt text
        raise RowRejected("prompt", "must be an object")
    response = keys.get("response")
    if isinstance(response, Mapping):
        event.completion_tokens = _json_int("response.tokens", response.get("tokens"))
        event.finish_reason = _json_str("response.finish_reason", response.get("finish_reason"))
    elif response is not None and not isinstance(response, str):
        raise RowRejected("response", "must be an object")
    usage = _json_object("usage", keys.get("usage")) or {}
    if event.prompt_tokens is None:
        field, value = _first(keys, ("prompt_tokens", "input_tokens"))
        if value is None:
            field, value = _first(usage, ("prompt_tokens", "input_tokens"))
            field = f"usage.{field}"
        event.prompt_tokens = _json_int(field, value)
    if event.completion_tokens is None:
        field, value = _first(keys, ("completion_tokens", "output_tokens"))
        if value is None:
            field, value = _first(usage, ("completion_tokens", "output_tokens"))
            field = f"usage.{field}"
        event.completion_tokens = _json_int(field, value)
    if keys.get("total_tokens") is not None:
        event.total_tokens = _json_int("total_tokens", keys["total_tokens"])
    else:
        event.total_tokens = _json_int("usage.total_tokens", usage.get("total_tokens"))
    if event.finish_reason is None:
        event.finish_reason = _json_str("finish_reason", keys.get("finish_reason"))

    event.latency_ms = _json_float("latency_ms", keys.get("latency_ms"))
    event.ttft_ms = _json_float("ttft_ms", keys.get("ttft_ms"))
    event.cost_usd = _json_float("cost_usd", keys.get("cost_usd"))

    is_error = keys.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise RowRejected("is_error", "must be a boolean")
    event.is_error = is_error
    errors = keys.get("errors")
    if errors is not None:
        if not isinstance(errors, list | tuple):
            raise RowRejected("errors", "must be a list")
        if errors:
            _json_error(event, "errors[0]", errors[0])
            if event.is_error is None:
                event.is_error = True
    error = keys.get("error")
    if isinstance(error, bool):
        if event.is_error is None:
            event.is_error = error
    elif error is not None and not event.error_type and not event.error_message:
        _json_error(event, "error", error)
    status = keys.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        status = str(status)  # an HTTP code
    elif isinstance(status, float) and status.is_integer():
        status = str(int(status))
    event.status = _json_str("status", status)

    event.user_id = _json_str("user_id", keys.get("user_id"))
    event.session_id = _json_str("session_id", keys.get("session_id"))
    event.metadata = _json_string_map("metadata", keys.get("metadata"))
    return event


def _json_error(event: RawLlmEvent, field: str, error: Any) -> None:
    if isinstance(error, str):
        event.error_message = error
    elif isinstance(error, Mapping):
        event.error_type = _json_str(f"{field}.type", error.get("type")) or _json_str(
            f"{field}.code", error.get("code")
        )
        event.error_message = _json_str(f"{field}.message", error.get("message"))
        if not event.error_type and not event.error_message:
            event.error_type = "error"
    else:
        raise RowRejected(field, "must be a string or an object")


def _json_sample(keys: Mapping[str, Any]) -> RawSample:
    name: Any = None
    labels: Any = None
    series = keys.get("series")
    if isinstance(series, Mapping):
        name, labels = series.get("name"), series.get("labels")
    elif series is not None:
        name = _json_str("series", series)
    if keys.get("name") is not None:
        name = keys["name"]
    if keys.get("labels") is not None:
        labels = keys["labels"]
    field, value = _first(keys, _SAMPLE_TIME_KEYS)
    return RawSample(
        name=_json_str("name", name) or "",
        labels=_json_string_map("labels", labels),
        time_ns=parse_time_ns("sample_time" if field == "time" else field, value),
        value=keys.get("value"),
        source="json",
    )
