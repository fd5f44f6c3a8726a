"""Metric samples derived from canonical LLM events, and columnar sample batches.

Every event yields, at its own time and for the series labels {service, model, provider (omitted
when empty)}, one point of each metric whose input is known:

===================== ======================================================================
`llm.latency_ms`      latency_ms
`llm.ttft_ms`         ttft_ms
`llm.tokens.prompt`   prompt_tokens
`llm.tokens.completion` completion_tokens
`llm.tokens.total`    total_tokens
`llm.cost_usd`        cost_usd
`llm.requests`        1 (the request count; a rate once aggregated per step)
`llm.errors`          1.0 for a failed call, 0.0 otherwise (the error rate once averaged)
`llm.tokens_per_s`    completion_tokens / generation seconds, generation = latency - ttft when
                      ttft is known and > 0, else latency; omitted unless latency and
                      completion tokens are known and the quotient is finite (generation > 0)
===================== ======================================================================

The tenant is not a label: it comes from the caller's credentials and storage keys series by it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sentinel.ingestion.domain.model import LabelTuple, LlmEvent, SampleRow, SeriesKeyTuple

METRICS: tuple[str, ...] = (
    "llm.latency_ms",
    "llm.ttft_ms",
    "llm.tokens.prompt",
    "llm.tokens.completion",
    "llm.tokens.total",
    "llm.cost_usd",
    "llm.requests",
    "llm.errors",
    "llm.tokens_per_s",
)
_N_METRICS = len(METRICS)
_N_GIVEN = _N_METRICS - 1  # every metric but tokens_per_s is read straight off the event
_METRIC_OFFSETS = np.arange(_N_METRICS, dtype=np.int64)


@dataclass
class ColumnarSamples:
    """A columnar batch of samples: a series table and three per-point columns.

    Attributes:
        series: The series table: (name, labels sorted by key) per entry.
        series_index: Shape (n,), uint32: per point, an index into `series`.
        time_ns: Shape (n,), int64: per point, ns since the Unix epoch.
        value: Shape (n,), float64: per point, the value (finite).
        wire: These same points already encoded for the wire, opaque to the domain: the adapter
            that encodes them first keeps the encoding here so the next one sends it as is.
    """

    series: list[SeriesKeyTuple]
    series_index: npt.NDArray[np.uint32]
    time_ns: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    wire: object | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.value)

    @classmethod
    def empty(cls) -> ColumnarSamples:
        """A batch with no series and no points."""
        return cls(
            [], np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        )

    @classmethod
    def from_columns(
        cls,
        series: Sequence[tuple[str, Mapping[str, str]]],
        series_index: npt.NDArray[np.uint32],
        time_ns: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
        keep: npt.NDArray[np.bool_] | None = None,
    ) -> ColumnarSamples:
        """Build from decoded columns (e.g. `validate_columnar`'s input), keeping only `keep`.

        Labels are sorted; series that no kept point references are dropped.
        """
        table = [(name, tuple(sorted(labels.items()))) for name, labels in series]
        samples = cls(
            table,
            np.asarray(series_index, dtype=np.uint32),
            np.asarray(time_ns, dtype=np.int64),
            np.asarray(value, dtype=np.float64),
        )
        return samples if keep is None else samples.select(keep)

    @classmethod
    def from_rows(cls, rows: Sequence[SampleRow]) -> ColumnarSamples:
        """Build from rows (name, sorted labels, time_ns, value), e.g. of `normalise_sample`."""
        positions: dict[SeriesKeyTuple, int] = {}
        index: list[int] = []
        for name, labels, _, _ in rows:
            key = (name, labels)
            position = positions.get(key)
            if position is None:
                position = positions[key] = len(positions)
            index.append(position)
        n = len(rows)
        return cls(
            list(positions),
            np.asarray(index, dtype=np.uint32),
            np.fromiter((row[2] for row in rows), dtype=np.int64, count=n),
            np.fromiter((row[3] for row in rows), dtype=np.float64, count=n),
        )

    def select(self, keep: npt.NDArray[np.bool_]) -> ColumnarSamples:
        """The points where `keep` is true; the series table is compacted to the ones used."""
        return _compact(self.series, self.series_index[keep], self.time_ns[keep], self.value[keep])

    def rows(self) -> Iterator[SampleRow]:
        """The points as (name, labels, time_ns, value) rows, in order (for tests and logs)."""
        series = self.series
        for s, t, v in zip(
            self.series_index.tolist(), self.time_ns.tolist(), self.value.tolist(), strict=True
        ):
            name, labels = series[s]
            yield name, labels, t, v


def _compact(
    series: Sequence[SeriesKeyTuple],
    series_index: npt.NDArray[np.integer],
    time_ns: npt.NDArray[np.int64],
    value: npt.NDArray[np.float64],
) -> ColumnarSamples:
    """Drop unreferenced series, renumbering the points' series indexes (order kept)."""
    used = np.zeros(len(series), dtype=np.bool_)
    used[series_index] = True
    kept = np.flatnonzero(used)
    if len(kept) == len(series):
        table = list(series)
        index = np.asarray(series_index, dtype=np.uint32)
    else:
        renumber = np.zeros(len(series), dtype=np.uint32)
        renumber[kept] = np.arange(len(kept), dtype=np.uint32)
        table = [series[i] for i in kept.tolist()]
        index = renumber[series_index]
    return ColumnarSamples(table, index, time_ns, value)


def labels_for(service: str, model: str, provider: str) -> LabelTuple:
    """The sorted labels of a derived series: model, provider (when known), service."""
    if provider:
        return (("model", model), ("provider", provider), ("service", service))
    return (("model", model), ("service", service))


def derive_samples(events: Sequence[LlmEvent]) -> ColumnarSamples:
    """Derive the metric samples of validated events (see the module docstring).

    Points come in event order, then in `METRICS` order; the series table holds only series that
    have points. One Python pass gathers a fixed-width row per event (NaN = unknown); NumPy does
    the rest.
    """
    n = len(events)
    if n == 0:
        return ColumnarSamples.empty()
    nan = math.nan
    groups: dict[tuple[str, str, str], int] = {}
    group_of: list[int] = []
    times: list[int] = []
    cells: list[float | int | None] = []
    add_group = group_of.append
    add_time = times.append
    add_cells = cells.extend
    for event in events:
        key = (event.service, event.model, event.provider)
        group = groups.get(key)
        if group is None:
            group = groups[key] = len(groups)
        add_group(group)
        add_time(event.time_ns)
        add_cells(
            (
                event.latency_ms,
                event.ttft_ms,
                event.prompt_tokens,
                event.completion_tokens,
                event.total_tokens,
                event.cost_usd,
                1.0,
                1.0 if event.is_error else 0.0,
            )
        )
    # dtype=float64 turns None into NaN.
    given = np.array(cells, dtype=np.float64).reshape(n, _N_GIVEN)
    table = np.empty((n, _N_METRICS), dtype=np.float64)
    table[:, :_N_GIVEN] = given
    latency, ttft, completion = given[:, 0], given[:, 1], given[:, 3]
    generation_ms = np.where(ttft > 0.0, latency - ttft, latency)  # NaN ttft > 0 is False
    computable = (generation_ms > 0.0) & ~np.isnan(completion)
    tokens_per_s = table[:, _N_GIVEN]
    tokens_per_s.fill(nan)
    with np.errstate(over="ignore", divide="ignore"):
        np.divide(completion, generation_ms / 1000.0, out=tokens_per_s, where=computable)
    tokens_per_s[np.isinf(tokens_per_s)] = nan  # a generation time that underflows to 0 s

    known = ~np.isnan(table)
    groups_column = np.asarray(group_of, dtype=np.int64)
    series_of_cell = groups_column[:, None] * _N_METRICS + _METRIC_OFFSETS
    point_series = series_of_cell[known]
    value = table[known]
    time_ns = np.repeat(np.asarray(times, dtype=np.int64), known.sum(axis=1))

    group_labels = [labels_for(service, model, provider) for service, model, provider in groups]
    full_table = [(metric, labels) for labels in group_labels for metric in METRICS]
    return _compact(full_table, point_series, time_ns, value)


def merge(*inputs: ColumnarSamples | Sequence[SampleRow]) -> ColumnarSamples:
    """Concatenate batches (points in argument order); equal series keys share one entry.

    Args:
        inputs: Columnar batches, or sequences of rows (name, sorted labels, time_ns, value) as
            `normalise_sample` returns them.
    """
    parts = tuple(
        part
        for part in (p if isinstance(p, ColumnarSamples) else ColumnarSamples.from_rows(p) for p in inputs)
        if len(part)
    )
    if not parts:
        return ColumnarSamples.empty()
    if len(parts) == 1:
        return parts[0]
    positions: dict[SeriesKeyTuple, int] = {}
    indexes: list[npt.NDArray[np.uint32]] = []
    for part in parts:
        renumber: list[int] = []
        for key in part.series:
            position = positions.get(key)
            if position is None:
                position = positions[key] = len(positions)
            renumber.append(position)
        indexes.append(np.asarray(renumber, dtype=np.uint32)[part.series_index])
    return ColumnarSamples(
        list(positions),
        np.concatenate(indexes),
        np.concatenate([part.time_ns for part in parts]),
        np.concatenate([part.value for part in parts]),
    )
