"""Ingestion use cases: validate and normalise, derive samples, store durably, then forward."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import Counter

from sentinel.ingestion.domain.derive import ColumnarSamples, derive_samples, merge
from sentinel.ingestion.domain.model import (
    Limits,
    LlmEvent,
    RawLlmEvent,
    RawSample,
    RowError,
    RowRejected,
)
from sentinel.ingestion.domain.validate import normalise_event, normalise_sample, validate_columnar
from sentinel.ingestion.ports import SampleForwarder, SampleStore
from sentinel.runtime.clock import Clock
from sentinel.runtime.errors import InvalidArgumentError, ResourceExhaustedError, SentinelError

logger = logging.getLogger(__name__)

OTLP_SPANS = Counter("sentinel_ingest_otlp_spans_total", "OTLP spans received", ["kind"])

RawInput = RawLlmEvent | RawSample | RowRejected


@dataclass(frozen=True)
class BatchOutcome:
    """What happened to one batch: its id, accepted rows, rejected rows, derived points."""

    batch_id: str
    accepted: int
    rejected: list[RowError]
    derived_points: int
    duplicate: bool


@dataclass(frozen=True)
class ColumnarBatch:
    """A columnar sample batch as received: series key table and per-point columns."""

    batch_id: str
    series: Sequence[tuple[str, dict[str, str]]]
    series_index: np.ndarray
    time_ns: np.ndarray
    value: np.ndarray
    wire: object | None = None  # the batch as received (batch_id set), sent on unchanged if all points pass


def content_batch_id(kind: str, payload: bytes) -> str:
    """Idempotency id derived from a batch's bytes, for callers that send none."""
    return f"{kind}:sha256:{hashlib.sha256(payload).hexdigest()[:40]}"


@dataclass
class IngestionService:
    """The use cases behind IngestionService and the OTLP receiver.

    Bad-row policy: rows that fail validation are rejected one by one and reported with their
    index, field and reason; the other rows are stored. A batch whose every row fails is
    INVALID_ARGUMENT (naming the first failure). A batch is acknowledged only after storage
    committed it.
    """

    store: SampleStore
    forwarder: SampleForwarder
    clock: Clock
    limits: Limits
    max_inflight_writes: int = 32
    backpressure_wait_s: float = 1.0
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.max_inflight_writes)

    async def ingest_events(
        self,
        *,
        tenant: str,
        batch_id: str,
        raw: Sequence[RawInput],
        deadline_s: float,
        field_name: str = "events",
    ) -> BatchOutcome:
        """Normalise telemetry events, derive their samples and store them as one batch."""
        if not raw:
            raise InvalidArgumentError(field_name, "must not be empty")
        if len(raw) > self.limits.max_events_per_batch:
            raise InvalidArgumentError(
                field_name,
                f"{len(raw)} events exceed the limit of {self.limits.max_events_per_batch} per batch",
            )
        now_ns = _ns(self.clock)
        events: list[LlmEvent] = []
        generic: list[tuple[str, tuple[tuple[str, str], ...], int, float]] = []
        rejected: list[RowError] = []
        for index, item in enumerate(raw):
            try:
                if isinstance(item, RowRejected):
                    raise item
                if isinstance(item, RawSample):
                    generic.append(normalise_sample(item, now_ns=now_ns, limits=self.limits))
                else:
                    events.append(
                        normalise_event(item, now_ns=now_ns, limits=self.limits, id_factory=_new_event_id)
                    )
            except RowRejected as bad:
                rejected.append(bad.to_row_error(index))
        if not events and not generic:
            first = rejected[0]
            raise InvalidArgumentError(f"{field_name}[{first.index}].{first.field}", first.reason)
        samples = merge(derive_samples(events), generic)
        stored = await self._store(tenant=tenant, batch_id=batch_id, samples=samples, deadline_s=deadline_s)
        return BatchOutcome(batch_id, len(events) + len(generic), rejected, len(samples), stored)

    async def ingest_event_stream(
        self, *, tenant: str, batches: AsyncIterator[tuple[str, Sequence[RawInput]]], deadline_s: float
    ) -> list[BatchOutcome]:
        """Store each batch of a stream as it arrives (each acknowledged by storage on its own).

        A batch that cannot be stored ends the stream with its error, naming the batch; the batches
        before it stay stored, so the client may resend from that batch with the same ids.
        """
        outcomes: list[BatchOutcome] = []
        async for batch_id, raw in batches:
            try:
                outcomes.append(
                    await self.ingest_events(tenant=tenant, batch_id=batch_id, raw=raw, deadline_s=deadline_s)
                )
            except SentinelError as exc:
                exc.message = f"batch {batch_id!r} (#{len(outcomes)} of the stream): {exc.message}"
                exc.metadata.setdefault("batch_id", batch_id)
                raise
        return outcomes

    async def ingest_spans(
        self, *, tenant: str, batch_id: str, raw: Sequence[RawLlmEvent], skipped_spans: int, deadline_s: float
    ) -> BatchOutcome:
        """Store the LLM calls found in an OTLP export; an export with none stores nothing."""
        OTLP_SPANS.labels("llm").inc(len(raw))
        OTLP_SPANS.labels("skipped_not_llm").inc(skipped_spans)
        if not raw:
            return BatchOutcome(batch_id, 0, [], 0, False)
        return await self.ingest_events(
            tenant=tenant, batch_id=batch_id, raw=raw, deadline_s=deadline_s, field_name="spans"
        )

    async def write_samples(self, *, tenant: str, batch: ColumnarBatch, deadline_s: float) -> BatchOutcome:
        """Validate a columnar batch point by point (vectorised) and store the good points."""
        batch_id, series, series_index, time_ns, value = (
            batch.batch_id,
            batch.series,
            batch.series_index,
            batch.time_ns,
            batch.value,
        )
        keep, rejected = validate_columnar(
            series, series_index, time_ns, value, now_ns=_ns(self.clock), limits=self.limits
        )
        accepted = int(np.count_nonzero(keep))
        if accepted == 0:
            if not rejected:
                raise InvalidArgumentError("batch.value", "must not be empty")
            first = rejected[0]
            raise InvalidArgumentError(
                f"batch.{first.field}", f"{first.reason} (point {first.index}; every point was rejected)"
            )
        samples = ColumnarSamples.from_columns(series, series_index, time_ns, value, keep)
        if not rejected:
            samples.wire = batch.wire  # nothing dropped: storage and detection get the bytes we received
        stored = await self._store(tenant=tenant, batch_id=batch_id, samples=samples, deadline_s=deadline_s)
        return BatchOutcome(batch_id, accepted, rejected, len(samples), stored)

    async def write_sample_stream(
        self, *, tenant: str, batches: AsyncIterator[ColumnarBatch], deadline_s: float
    ) -> list[BatchOutcome]:
        """Store each columnar batch of a stream as it arrives; errors name the failing batch."""
        outcomes: list[BatchOutcome] = []
        async for batch in batches:
            try:
                outcomes.append(await self.write_samples(tenant=tenant, batch=batch, deadline_s=deadline_s))
            except SentinelError as exc:
                exc.message = f"batch {batch.batch_id!r} (#{len(outcomes)} of the stream): {exc.message}"
                exc.metadata.setdefault("batch_id", batch.batch_id)
                raise
        return outcomes

    async def _store(
        self, *, tenant: str, batch_id: str, samples: ColumnarSamples, deadline_s: float
    ) -> bool:
        """Write through storage within the deadline, then forward; returns whether it was a duplicate."""
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=min(self.backpressure_wait_s, deadline_s))
        except TimeoutError:
            raise ResourceExhaustedError(
                f"storage is behind: {self.max_inflight_writes} batches are being written; "
                "retry with backoff",
                reason="BACKPRESSURE",
            ) from None
        try:
            stored = await self.store.write(
                tenant=tenant, batch_id=batch_id, samples=samples, deadline_s=deadline_s
            )
        finally:
            self._slots.release()
        if not stored.duplicate:
            self.forwarder.forward(tenant=tenant, batch_id=batch_id, samples=samples)
        return stored.duplicate


def _new_event_id() -> str:
    return uuid.uuid4().hex


def _ns(clock: Clock) -> int:
    now = clock.now()
    return int(now.timestamp()) * 1_000_000_000 + now.microsecond * 1000
