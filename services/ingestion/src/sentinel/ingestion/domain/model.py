"""Canonical types of the ingestion domain: raw rows as received, validated events, limits.

Pure: no gRPC, protobuf, asyncpg or Redis. `sentinel.ingestion.grpc.convert` turns protobuf into the
`Raw*` types; `sentinel.ingestion.domain.validate` turns those into the canonical `LlmEvent` or a
sample row, or raises `RowRejected`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventSource = Literal["nested", "flat", "json", "otlp"]
SampleSource = Literal["sample", "json"]

#: Labels of a series, sorted by key: the hashable, canonical form of a label set.
LabelTuple = tuple[tuple[str, str], ...]
#: A canonical series key: (name, sorted labels).
SeriesKeyTuple = tuple[str, LabelTuple]
#: One validated generic sample: (name, sorted labels, time_ns, value).
SampleRow = tuple[str, LabelTuple, int, float]


@dataclass(frozen=True)
class Limits:
    """Validation limits (the defaults are the published ones, see ingestion_service.proto).

    Attributes:
        max_latency_ms: Upper bound of latency_ms (inclusive).
        max_ttft_ms: Upper bound of ttft_ms (inclusive).
        max_tokens: Upper bound of each token count (inclusive).
        max_cost_usd: Upper bound of cost_usd (inclusive).
        max_future_s: How far ahead of the server clock a time may lie.
        max_past_s: How far behind the server clock a time may lie.
        max_events_per_batch: Events per request or stream message.
        max_points_per_batch: Sample points per request or stream message.
        max_series_per_batch: Series-table entries per columnar batch.
        max_labels: Labels per series.
        max_name_len: Series names, service, model, user and session ids, error types.
        max_label_key_len: Label and metadata keys; also the provider.
        max_label_value_len: Label values.
        max_string_len: Metadata values.
        max_metadata_entries: Metadata entries per event.
        max_id_len: Event id and request id.
        max_error_message_len: Error messages are truncated (not rejected) to this length.
    """

    max_latency_ms: float = 600_000.0
    max_ttft_ms: float = 600_000.0
    max_tokens: int = 10_000_000
    max_cost_usd: float = 10_000.0
    max_future_s: float = 600.0
    max_past_s: float = 7 * 86400.0
    max_events_per_batch: int = 10_000
    max_points_per_batch: int = 100_000
    max_series_per_batch: int = 10_000
    max_labels: int = 32
    max_name_len: int = 200
    max_label_key_len: int = 100
    max_label_value_len: int = 500
    max_string_len: int = 1_000
    max_metadata_entries: int = 64
    max_id_len: int = 128
    max_error_message_len: int = 2_000


@dataclass(slots=True)
class RawLlmEvent:
    """One LLM call as received, before validation; every field may be missing (None).

    `is_error` None means "decide from status, error_type and error_message".
    """

    event_id: str | None = None
    time_ns: int | None = None
    service: str | None = None
    model: str | None = None
    provider: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    cost_usd: float | None = None
    is_error: bool | None = None
    error_type: str | None = None
    error_message: str | None = None
    status: str | None = None
    finish_reason: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    request_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    source: EventSource = "nested"


@dataclass(slots=True)
class RawSample:
    """One generic metric sample as received; `value` is whatever the payload held."""

    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    time_ns: int | None = None
    value: Any = None
    source: SampleSource = "sample"


@dataclass(slots=True, frozen=True)
class LlmEvent:
    """The canonical, validated LLM call event every accepted form normalises to.

    Numbers are finite and within `Limits`; None means "not measured / unknown". `metadata` is a
    plain dict for speed: treat it as read-only (the event is not hashable).
    """

    event_id: str
    time_ns: int
    service: str
    model: str
    provider: str = ""
    trace_id: str = ""
    span_id: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    cost_usd: float | None = None
    is_error: bool = False
    error_type: str = ""
    error_message: str = ""
    status: str = ""
    finish_reason: str = ""
    user_id: str = ""
    session_id: str = ""
    request_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    source: EventSource = "nested"


@dataclass(frozen=True)
class RowError:
    """One rejected row of a batch: its index, the field path inside the row and why."""

    index: int
    field: str
    reason: str


class RowRejected(Exception):
    """A row failed validation.

    Attributes:
        field: Canonical field name: an `LlmEvent` attribute ("time" for time_ns) for events,
            "name", "labels", "sample_time" or "value" for samples.
        reason: Why, e.g. "must be finite and >= 0".
        form: The form the row came in ("nested", "flat", "sample", "json", "otlp"), or None.
        path: The field path as the client wrote it, prefixed by the form, e.g.
            "nested.prompt.tokens", "flat.model_name", "json.latency_ms" (see `field_path`).
    """

    def __init__(self, field: str, reason: str, *, form: str | None = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.form = form

    @property
    def path(self) -> str:
        """The field path inside the row for RowError.field, e.g. "nested.prompt.tokens"."""
        return field_path(self.form, self.field)

    def to_row_error(self, index: int) -> RowError:
        """The RowError for row `index` of a batch."""
        return RowError(index, self.path, self.reason)


# Canonical field name -> the field path of each form, where the form names it differently.
_PATHS: dict[str, dict[str, str]] = {
    "nested": {
        "time": "event_time",
        "service": "service_name",
        "prompt_tokens": "prompt.tokens",
        "completion_tokens": "response.tokens",
        "finish_reason": "response.finish_reason",
        "error_type": "errors",
        "error_message": "errors",
    },
    "flat": {
        "event_id": "request_id",
        "time": "event_time",
        "service": "service_name",
        "model": "model_name",
        "error_message": "error",
    },
    "sample": {"name": "series.name", "labels": "series.labels"},
    # An event's "time" is "timestamp" in JSON, a sample's "sample_time" is "time".
    "json": {"time": "timestamp", "service": "service_name", "sample_time": "time"},
}


def field_path(form: str | None, field: str) -> str:
    """The client-facing path of canonical `field` in a row of `form`, e.g. ("flat", "model")."""
    if not form:
        return field
    return f"{form}.{_PATHS.get(form, {}).get(field, field)}"
