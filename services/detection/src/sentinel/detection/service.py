"""Detection use cases: streaming scoring over per-series state, stateless scoring, introspection.

Threading: every read or write of the engine's state arrays that can race with scoring runs on the
micro-batcher's one worker thread, in submission order. The event loop only reads rows of series
that no job in flight uses (pinned entries are never evicted), which no worker task writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Gauge

from sentinel.detection.batcher import MicroBatcher
from sentinel.detection.domain.batch import (
    MAX_SERIES_POINTS,
    OutOfOrder,
    ScoreRequest,
    invalid_point,
    out_of_order,
    validate_request,
)
from sentinel.detection.domain.detectors import DetectorInfo, DetectorKind, catalogue, weights_for
from sentinel.detection.domain.episodes import AnomalousPoint, Episode, EpisodeChange, EpisodeTracker
from sentinel.detection.domain.explain import explain
from sentinel.detection.domain.multivariate import METRIC as MULTIVARIATE_METRIC
from sentinel.detection.domain.recent import RecentPoint, RecentRing
from sentinel.detection.domain.results import (
    ScoreOutcome,
    Scores,
    SeriesOutcome,
    anomaly_type_of,
    anomaly_types,
    visible_severity,
)
from sentinel.detection.domain.series import SeriesKey, SeriesRef, validate_series_key
from sentinel.detection.domain.slots import NO_TIME, SeriesEntry, SlotsExhaustedError, SlotTable
from sentinel.detection.engine import DETECTOR_NAMES, Detector, EngineConfig, EngineState, StreamingScorer
from sentinel.detection.ports import AnomalySink, StateStore

if TYPE_CHECKING:
    from sentinel.detection.multivariate import MultivariateMonitor
from sentinel.runtime.clock import Clock
from sentinel.runtime.errors import InvalidArgumentError, NotFoundError, ResourceExhaustedError

logger = logging.getLogger(__name__)

_MAX_CACHED_REFS = 200_000  # series refs kept by the series-table cache (_refs_of)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

EVICTED = Counter("sentinel_detection_series_evicted_total", "Series whose state left memory (LRU)")
RESTORED = Counter("sentinel_detection_series_restored_total", "Series restored from a checkpoint")
SERIES = Gauge("sentinel_detection_series_in_memory", "Series holding an engine slot")
CHECKPOINTS = Counter("sentinel_detection_checkpoints_total", "Checkpoints", ["outcome"])
CHECKPOINTED = Counter("sentinel_detection_checkpointed_series_total", "Series states written to Redis")
POINTS = Counter("sentinel_detection_points_total", "Points scored", ["outcome"])


@dataclass(frozen=True)
class Options:
    """Tunables of the use cases (from settings)."""

    batch_max_points: int = 32_768
    batch_max_delay_s: float = 0.0
    queue_max_points: int = 1_000_000
    checkpoint_interval_s: float = 30.0
    episode_gap_ns: int = 600 * 1_000_000_000
    batch_cache_size: int = 4096
    recent_points: int = 16
    evicted_cache_size: int = 1024
    max_concurrent_evaluations: int = 2


@dataclass
class _Job:
    """One request's accepted points, handed to the worker."""

    tenant: str
    refs: list[SeriesRef]  # unique series of the request (local index = position)
    entries: list[SeriesEntry]
    metrics: list[str]
    local: IntArray  # per accepted point: local series index
    slots: IntArray
    times: IntArray
    values: FloatArray
    preps: list[tuple[int, bytes]]


@dataclass(frozen=True)
class _Done:
    scores: Scores
    changes: list[EpisodeChange]


@dataclass(frozen=True)
class DetectorStateView:
    detector: str
    values: dict[str, float]
    last_score: float


@dataclass(frozen=True)
class SeriesStateView:
    """GetSeriesState's answer."""

    key: SeriesKey
    sample_count: int
    last_sample_unix_nano: int
    last_value: float
    baseline: float
    last_score: float
    warming_up: bool
    window_points: int
    detectors: tuple[DetectorStateView, ...]
    checkpoint_unix_nano: int


@dataclass(frozen=True)
class Explanation:
    """ExplainScore's answer."""

    key: SeriesKey
    point: RecentPoint
    is_anomaly: bool
    severity: int
    anomaly_type: int
    threshold: float
    contributions: tuple[tuple[str, float, float, float], ...]  # name, score, weight, statistic
    text: str


class DetectionService:
    """The detection use cases, independent of gRPC and Redis."""

    def __init__(
        self,
        *,
        config: EngineConfig,
        store: StateStore,
        sink: AnomalySink,
        clock: Clock,
        options: Options | None = None,
        multivariate: MultivariateMonitor | None = None,
    ) -> None:
        self.config = config
        self.multivariate = multivariate
        self.options = options or Options()
        self._store = store
        self._sink = sink
        self._clock = clock
        self._scorer = StreamingScorer(config)
        self._scratch = EngineState(dataclasses.replace(config, capacity=1))
        self._table = SlotTable(config.capacity)
        self._ring = RecentRing(config.capacity, self.options.recent_points, len(Detector))
        self._episodes = EpisodeTracker(gap_ns=self.options.episode_gap_ns)
        self._evicted: OrderedDict[SeriesRef, bytes] = OrderedDict()  # recently evicted states
        self._unsaved: set[SeriesRef] = set()  # of those, not yet checkpointed
        self._batches: OrderedDict[tuple[str, str], asyncio.Future[ScoreOutcome]] = OrderedDict()
        self._ref_tables: OrderedDict[tuple[str, tuple[SeriesKey, ...]], list[SeriesRef]] = OrderedDict()
        self._ref_count = 0
        self._evaluations = 0
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._checkpoint_lock = asyncio.Lock()
        total = sum(config.weights)
        self._weights = tuple(w / total for w in config.weights)
        self._batcher: MicroBatcher[_Job, Scores, _Done] = MicroBatcher(
            self._run,
            self._finish,
            abandon=self._abandon,
            max_points=self.options.batch_max_points,
            max_delay_s=self.options.batch_max_delay_s,
            max_queue_points=self.options.queue_max_points,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the state store, warm the kernels, start the batcher, checkpoints and reporting."""
        await self._store.open()
        self._batcher.start()
        await self._batcher.call(self._warm)
        if self.multivariate is not None:
            await self.multivariate.start()
        await self._sink.start()
        if self._store.durable and self.options.checkpoint_interval_s > 0:
            self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(), name="detection-checkpoints")

    async def stop(self) -> None:
        """Score what was accepted, checkpoint every series, deliver queued reports, close."""
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint_task
            self._checkpoint_task = None
        await self._batcher.stop()
        if self._store.durable:
            try:
                saved = await self.checkpoint()
                logger.info("final checkpoint of %d series", saved)
            except Exception:
                logger.exception("final checkpoint failed")
        await self._batcher.close()
        if self.multivariate is not None:
            await self.multivariate.stop()
        await self._sink.stop()
        await self._store.close()

    def _warm(self) -> None:
        # First calls of NumPy paths (partition, searchsorted, ...) allocate and dispatch lazily,
        # and the compiled kernels compile (or load from numba's cache) on their first call. Two
        # calls: the first fills the windows, the second refreshes references of full windows
        # only (the compiled path), so every path has run before the service reports SERVING.
        cfg = dataclasses.replace(self.config, capacity=2)
        n = max(cfg.warmup_points, cfg.window) + 2 * cfg.reference_refresh + 16
        rng = np.random.default_rng(0)
        times = np.arange(n, dtype=np.int64) * 60_000_000_000 + 1_700_000_000_000_000_000
        values = 100 + rng.normal(0, 1, n)
        values[-1] += 50
        scorer = StreamingScorer(cfg)
        cut = max(cfg.warmup_points, cfg.window)
        for part in (slice(0, cut), slice(cut, n)):
            k = part.stop - part.start
            scorer.score(np.repeat(np.arange(2), k), np.tile(times[part], 2), np.tile(values[part], 2))

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.checkpoint_interval_s)
            try:
                await self.checkpoint()
            except Exception:
                logger.warning("checkpoint failed; retrying next period", exc_info=True)

    # -- streaming scoring ----------------------------------------------------------------------

    async def score_samples(self, *, tenant: str, request: ScoreRequest) -> ScoreOutcome:
        """Score a batch against live state (idempotent by batch id); see the contract."""
        validate_request(request)
        if not request.batch_id:
            return await self._score(tenant, request)
        key = (tenant, request.batch_id)
        known = self._batches.get(key)
        if known is not None:
            self._batches.move_to_end(key)
            return await asyncio.shield(known)
        future: asyncio.Future[ScoreOutcome] = asyncio.get_running_loop().create_future()
        self._batches[key] = future
        while len(self._batches) > self.options.batch_cache_size:
            self._batches.popitem(last=False)
        try:
            outcome = await self._score(tenant, request)
        except BaseException as exc:
            self._batches.pop(key, None)
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: concurrent duplicates re-raise it
            else:
                future.cancel()
            raise
        future.set_result(outcome)
        return outcome

    async def _score(self, tenant: str, request: ScoreRequest) -> ScoreOutcome:
        n = len(request)
        used, local_of_point = np.unique(request.series_index, return_inverse=True)
        refs = self._refs_of(tenant, request.series)
        if len(used) != len(refs):
            refs = [refs[i] for i in used.tolist()]
        entries = await self._acquire(refs)
        submitted = False
        try:
            slots_of_local = np.array([e.slot for e in entries], dtype=np.int64)
            last_of_local = np.array([e.last_time for e in entries], dtype=np.int64)
            local = local_of_point.astype(np.int64)
            bad = out_of_order(slots_of_local[local], request.time_unix_nano, last_of_local[local])
            skipped = np.flatnonzero(bad)
            if len(skipped) and request.out_of_order is OutOfOrder.REJECT:
                i = int(skipped[0])
                raise invalid_point(
                    "batch.time_unix_nano",
                    i,
                    "is older than the last scored point of its series "
                    "(send points in time order, or set out_of_order_policy SKIP)",
                    "OUT_OF_ORDER",
                )
            accepted = np.flatnonzero(~bad) if len(skipped) else None
            acc_local = local if accepted is None else local[accepted]
            acc_times = request.time_unix_nano if accepted is None else request.time_unix_nano[accepted]
            acc_values = request.value if accepted is None else request.value[accepted]
            POINTS.labels("skipped").inc(len(skipped))
            if len(acc_local) == 0:
                return self._outcome(request, n, accepted, None, skipped, 0)
            preps = [(e.slot, e.prep) for e in entries if e.prep is not None]
            job = _Job(
                tenant=tenant,
                refs=refs,
                entries=entries,
                metrics=[r.key.name for r in refs],
                local=acc_local,
                slots=slots_of_local[acc_local],
                times=acc_times,
                values=acc_values,
                preps=preps,
            )
            future = self._batcher.submit(job, len(acc_local))
            submitted = True
            if self.multivariate is not None:  # the accepted points only
                self.multivariate.observe(tenant, request, accepted)
            # Accepted: from here on, later calls are checked against these points.
            for e in entries:
                e.prep = None
            latest = np.full(len(entries), NO_TIME, dtype=np.int64)
            np.maximum.at(latest, acc_local, acc_times)
            for e, t in zip(entries, latest.tolist(), strict=True):
                if t > e.last_time:
                    e.last_time = t
        finally:
            if not submitted:
                self._release(entries)
        done = await asyncio.shield(future)
        POINTS.labels("scored").inc(len(acc_local))
        reported = 0
        if request.report_anomalies and done.changes:
            reported = self._sink.publish(tenant, done.changes, threshold=self.config.threshold)
        return self._outcome(request, n, accepted, done.scores, skipped, reported, local=local)

    def _refs_of(self, tenant: str, series: tuple[SeriesKey, ...]) -> list[SeriesRef]:
        """The refs of a series table, cached by (tenant, table).

        Building a SeriesRef per series per request cost more than scoring its point; callers
        repeat their tables, and the gRPC layer hands the same (cached) table object again, so a
        hit is one dict lookup by identity.
        """
        key = (tenant, series)
        refs = self._ref_tables.get(key)
        if refs is not None:
            self._ref_tables.move_to_end(key)
            return refs
        refs = [SeriesRef(tenant, k) for k in series]
        self._ref_tables[key] = refs
        self._ref_count += len(refs)
        # bounded by the refs held (~100 bytes each), not by tables: one table may be huge
        while self._ref_count > _MAX_CACHED_REFS and len(self._ref_tables) > 1:
            self._ref_count -= len(self._ref_tables.popitem(last=False)[1])
        return refs

    def _outcome(
        self,
        request: ScoreRequest,
        n: int,
        accepted: IntArray | None,
        scores: Scores | None,
        skipped: IntArray,
        reported: int,
        local: IntArray | None = None,
    ) -> ScoreOutcome:
        n_det = len(Detector)
        if accepted is None and scores is not None:
            score, is_anom, sev = scores.score, scores.is_anomaly, scores.severity
            base, det, direction, contrib = (
                scores.baseline,
                scores.detector,
                scores.direction,
                scores.contributions,
            )
        else:
            score, base = np.full(n, np.nan), np.full(n, np.nan)
            is_anom = np.zeros(n, dtype=bool)
            sev, det, direction = (np.zeros(n, dtype=np.int8) for _ in range(3))
            contrib = np.full((n, n_det), np.nan)
            if scores is not None and accepted is not None:
                score[accepted], base[accepted], is_anom[accepted] = (
                    scores.score,
                    scores.baseline,
                    scores.is_anomaly,
                )
                sev[accepted], det[accepted], direction[accepted] = (
                    scores.severity,
                    scores.detector,
                    scores.direction,
                )
                contrib[accepted] = scores.contributions
        metrics = [key.name for key in request.series]
        types = anomaly_types(metrics, request.series_index, is_anom, direction, det)
        return ScoreOutcome(
            batch_id=request.batch_id,
            score=score,
            is_anomaly=is_anom,
            severity=visible_severity(sev, is_anom),
            anomaly_type=types,
            baseline=base,
            contributions=contrib if request.include_detector_scores else None,
            threshold=self.config.threshold,
            weights=self._weights,
            skipped_index=skipped,
            reported_anomaly_count=reported,
        )

    # -- series slots ---------------------------------------------------------------------------

    async def _acquire(self, refs: Sequence[SeriesRef]) -> list[SeriesEntry]:
        """Entries (pinned) for distinct series, restoring first-seen ones from their checkpoint."""
        # Series recently evicted are fetched too: the local copy wins, but it may be trimmed
        # while the fetch is in flight.
        fetched: dict[SeriesRef, bytes] = {}
        if self._store.durable:
            missing = [r for r in refs if r not in self._table]
            if missing:
                values = await self._store.load([r.digest for r in missing])
                fetched = {r: v for r, v in zip(missing, values, strict=True) if v is not None}
        # No await from here on: the table cannot change under us. Known series are pinned
        # first, so allocating the new ones never evicts a series of this same request.
        table = self._table
        entries: list[SeriesEntry | None] = []
        new: list[int] = []
        for i, ref in enumerate(refs):
            entry = table.get(ref)
            if entry is None:
                new.append(i)
            else:
                entry.pins += 1
            entries.append(entry)
        try:
            for i in new:
                ref = refs[i]
                data = self._evicted.get(ref)
                if data is None:
                    data = fetched.get(ref)
                entry = self._allocate(ref, data)
                entry.pins += 1
                entries[i] = entry
        except SlotsExhaustedError as exc:
            self._release([e for e in entries if e is not None])
            raise ResourceExhaustedError(str(exc), reason="SERIES_CAPACITY") from None
        return entries  # type: ignore[return-value]  # every None was replaced

    def _allocate(self, ref: SeriesRef, data: bytes | None) -> SeriesEntry:
        entry, evicted = self._table.add(ref)
        if evicted is not None:
            self._evict(evicted)
        self._ring.clear(entry.slot)
        if data:
            try:
                self._scratch.import_(0, data)
                entry.prep = data
                entry.last_time = int(self._scratch.ints["last_time"][0]) or NO_TIME
                RESTORED.inc()
            except ValueError:
                logger.warning("ignoring an unreadable checkpoint of %s", ref.key, exc_info=True)
                entry.prep = b""
        else:
            entry.prep = b""
        SERIES.set(len(self._table))
        return entry

    def _evict(self, entry: SeriesEntry) -> None:
        EVICTED.inc()
        change = self._episodes.close(entry.ref)
        if change is not None:
            self._sink.publish(entry.ref.tenant, [change], threshold=self.config.threshold)
        # A slot never scored holds what it was restored from. Exporting on the loop thread is
        # safe: an unpinned slot is used by no queued or running job.
        data = entry.prep if entry.prep is not None else self._scorer.state.export(entry.slot)
        if data:
            self._evicted[entry.ref] = data
            self._evicted.move_to_end(entry.ref)
            if entry.dirty:
                self._unsaved.add(entry.ref)
            self._trim_evicted()

    def _trim_evicted(self) -> None:
        # States not checkpointed yet stay until the next checkpoint has written them.
        excess = len(self._evicted) - self.options.evicted_cache_size
        if excess <= 0:
            return
        for ref in [r for r in self._evicted if r not in self._unsaved][:excess]:
            del self._evicted[ref]

    def _release(self, entries: Sequence[SeriesEntry]) -> None:
        for e in entries:
            e.pins -= 1

    # -- worker side (one thread) and completion (event loop) ------------------------------------

    def _run(self, jobs: Sequence[_Job]) -> list[Scores]:
        state = self._scorer.state
        for job in jobs:
            for slot, data in job.preps:
                if data:
                    state.import_(slot, data)
                else:
                    state.reset([slot])
        if len(jobs) == 1:
            slots, times, values = jobs[0].slots, jobs[0].times, jobs[0].values
        else:
            slots = np.concatenate([j.slots for j in jobs])
            times = np.concatenate([j.times for j in jobs])
            values = np.concatenate([j.values for j in jobs])
        out = self._scorer.score(slots, times, values)
        results = []
        at = 0
        for job in jobs:
            cut = slice(at, at + len(job.slots))
            at += len(job.slots)
            results.append(
                Scores(
                    score=out.score[cut],
                    is_anomaly=out.is_anomaly[cut],
                    severity=out.severity[cut],
                    detector=out.detector[cut],
                    direction=out.direction[cut],
                    baseline=out.baseline[cut],
                    contributions=out.contributions[cut],
                )
            )
        return results

    def _finish(self, job: _Job, scores: Scores) -> _Done:
        self._ring.record(
            job.slots,
            time=job.times,
            value=job.values,
            baseline=scores.baseline,
            score=scores.score,
            severity=scores.severity,
            detector=scores.detector,
            direction=scores.direction,
            contributions=scores.contributions,
        )
        for e in job.entries:
            e.dirty = True
        changes = self._fold_episodes(job, scores)
        self._release(job.entries)
        return _Done(scores, changes)

    def _abandon(self, job: _Job) -> None:
        self._release(job.entries)

    def _fold_episodes(self, job: _Job, scores: Scores) -> list[EpisodeChange]:
        anomalous = np.flatnonzero(scores.is_anomaly)
        watch = self._episodes.open_among(job.refs)
        if not len(anomalous) and not watch:
            return []
        latest = np.full(len(job.refs), NO_TIME, dtype=np.int64)
        np.maximum.at(latest, job.local, job.times)
        points: dict[int, list[AnomalousPoint]] = {}
        types = anomaly_types(job.metrics, job.local, scores.is_anomaly, scores.direction, scores.detector)
        for i in anomalous.tolist():
            points.setdefault(int(job.local[i]), []).append(
                AnomalousPoint(
                    time_unix_nano=int(job.times[i]),
                    value=float(job.values[i]),
                    baseline=float(scores.baseline[i]),
                    score=float(scores.score[i]),
                    severity=int(scores.severity[i]),
                    anomaly_type=int(types[i]),
                    detector=int(scores.detector[i]),
                    direction=int(scores.direction[i]),
                    contributions=tuple(scores.contributions[i].tolist()),
                )
            )
        changes: list[EpisodeChange] = []
        for i in sorted(watch | set(points)):
            changes += self._episodes.observe(job.refs[i], points.get(i, []), int(latest[i]))
        return changes

    # -- checkpoints ----------------------------------------------------------------------------

    async def checkpoint(self) -> int:
        """Write every series scored since its last checkpoint (one pipelined batch); returns count."""
        async with self._checkpoint_lock:
            dirty = [e for e in self._table.entries() if e.dirty]
            for e in dirty:
                e.dirty = False
            slots = [e.slot for e in dirty]
            state = self._scorer.state
            exports = await self._batcher.call(lambda: [state.export(s) for s in slots]) if slots else []
            states: dict[str, bytes] = {}
            unsaved = [r for r in self._unsaved if r in self._evicted]
            for ref in unsaved:
                states[ref.digest] = self._evicted[ref]
            for e, data in zip(dirty, exports, strict=True):
                states[e.ref.digest] = data
            if not states:
                return 0
            try:
                await self._store.save(states)
            except Exception:
                CHECKPOINTS.labels("failed").inc()
                for e in dirty:
                    e.dirty = True
                raise
            self._unsaved.difference_update(unsaved)
            self._trim_evicted()
            now = int(self._clock.now().timestamp() * 1_000_000) * 1_000
            for e in dirty:
                e.checkpoint_unix_nano = now
            CHECKPOINTS.labels("ok").inc()
            CHECKPOINTED.inc(len(states))
            return len(states)

    # -- stateless scoring ----------------------------------------------------------------------

    async def score_series(
        self,
        *,
        key: SeriesKey | None,
        times: IntArray,
        values: FloatArray,
        detectors: Sequence[str] = (),
        threshold: float | None = None,
        include_detector_scores: bool = False,
    ) -> SeriesOutcome:
        """Score a whole series from empty state; reads and changes no live state."""
        if key is None:
            raise InvalidArgumentError("series", "is required")
        validate_series_key(key, "series")
        n = len(values)
        if len(times) != n:
            raise InvalidArgumentError(
                "time_unix_nano",
                f"has {len(times)} points but value has {n}",
                reason="COLUMN_LENGTH_MISMATCH",
            )
        if n > MAX_SERIES_POINTS:
            raise InvalidArgumentError("value", f"has {n} points; at most {MAX_SERIES_POINTS}")
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise invalid_point("value", int(bad[0]), "must be finite", "NON_FINITE_VALUE")
        back = np.flatnonzero(times[1:] < times[:-1])
        if len(back):
            raise invalid_point("time_unix_nano", int(back[0]) + 1, "times must not decrease", "OUT_OF_ORDER")
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise InvalidArgumentError("threshold", "must be in (0, 1]")
        weights = weights_for(self.config, detectors)
        cfg = dataclasses.replace(
            self.config,
            capacity=1,
            weights=weights,
            threshold=self.config.threshold if threshold is None else threshold,
        )
        if self._evaluations >= self.options.max_concurrent_evaluations:
            raise ResourceExhaustedError("too many concurrent ScoreSeries evaluations; retry with backoff")
        self._evaluations += 1
        try:
            out = await asyncio.to_thread(
                StreamingScorer(cfg).score, np.zeros(n, dtype=np.int64), times, values
            )
        finally:
            self._evaluations -= 1
        scores = Scores(
            out.score,
            out.is_anomaly,
            out.severity,
            out.detector,
            out.direction,
            out.baseline,
            out.contributions,
        )
        request = ScoreRequest(
            batch_id="",
            series=(key,),
            series_index=np.zeros(n, dtype=np.int64),
            time_unix_nano=times,
            value=values,
            include_detector_scores=include_detector_scores,
        )
        outcome = dataclasses.replace(
            self._outcome(request, n, None, scores, np.zeros(0, dtype=np.int64), 0),
            threshold=cfg.threshold,
            weights=tuple(w / sum(weights) for w in weights),
        )
        tracker = EpisodeTracker(gap_ns=self.options.episode_gap_ns, with_ids=False)
        ref = SeriesRef("", key)
        anomalous = [
            AnomalousPoint(
                time_unix_nano=int(times[i]),
                value=float(values[i]),
                baseline=float(out.baseline[i]),
                score=float(out.score[i]),
                severity=int(out.severity[i]),
                anomaly_type=int(outcome.anomaly_type[i]),
                detector=int(out.detector[i]),
                direction=int(out.direction[i]),
                contributions=tuple(out.contributions[i].tolist()),
            )
            for i in np.flatnonzero(out.is_anomaly).tolist()
        ]
        closed: list[Episode] = []
        if n:
            for change in tracker.observe(ref, anomalous, int(times[-1])):
                if change.episode.closed:
                    closed.append(change.episode)
        return SeriesOutcome(outcome, tuple(closed + tracker.open_episodes()))

    # -- introspection --------------------------------------------------------------------------

    def list_detectors(self, kind: DetectorKind = DetectorKind.UNSPECIFIED) -> list[DetectorInfo]:
        """The detector catalogue of the configured engine."""
        extra = self.multivariate.catalogue(kind) if self.multivariate is not None else []
        return catalogue(self.config, kind) + extra

    async def _state_bytes(self, ref: SeriesRef) -> tuple[bytes | None, SeriesEntry | None]:
        entry = self._table.peek(ref)
        if entry is not None:
            if entry.prep is not None:
                return entry.prep, entry
            slot = entry.slot
            state = self._scorer.state
            return await self._batcher.call(lambda: state.export(slot)), entry
        data = self._evicted.get(ref)
        if data is None and self._store.durable:
            data = (await self._store.load([ref.digest]))[0]
        return data, None

    async def series_state(self, *, tenant: str, key: SeriesKey) -> SeriesStateView:
        """Debug view of one series' state, from memory or its checkpoint.

        Raises:
            NotFoundError: reason SERIES_NOT_FOUND.
        """
        validate_series_key(key, "series")
        if self.multivariate is not None and key.name == MULTIVARIATE_METRIC:
            return await self.multivariate.series_state(tenant=tenant, key=key)
        ref = SeriesRef(tenant, key)
        data, entry = await self._state_bytes(ref)
        if not data:
            raise NotFoundError(f"no state for series {key}", reason="SERIES_NOT_FOUND")
        st = EngineState(dataclasses.replace(self.config, capacity=1))
        st.import_(0, data)
        ints = {name: int(a[0]) for name, a in st.ints.items()}
        f = st.floats
        if ints["count"] == 0:
            raise NotFoundError(f"no state for series {key}", reason="SERIES_NOT_FOUND")
        last_contrib: tuple[float, ...] = (0.0,) * len(Detector)
        if entry is not None:
            recent = self._ring.points(entry.slot)
            if recent:
                last_contrib = recent[-1].contributions
        cal_m, cal_v = f["cal_mean"][0], f["cal_var"][0]

        def scalar(name: str) -> float:
            return float(f[name][0])

        own: dict[Detector, dict[str, float]] = {
            Detector.SPIKE: {"median": scalar("ref_center"), "robust_sigma": scalar("ref_scale")},
            Detector.LEVEL_SHIFT: {"median": scalar("ref_center"), "robust_sigma": scalar("ref_scale")},
            Detector.VARIANCE_CHANGE: {"robust_sigma": scalar("ref_scale")},
            Detector.CUSUM: {
                "cusum_pos": scalar("cusum_pos"),
                "cusum_neg": scalar("cusum_neg"),
                "ewma_mean": scalar("ew_mean"),
                "ewma_var": scalar("ew_var"),
            },
            Detector.SEASONAL: {
                "residual_mean_abs_dev": scalar("seas_dev"),
                "hour_bins_learnt": float(np.count_nonzero(f["hod_n"][0])),
                "weekday_bins_learnt": float(np.count_nonzero(f["dow_n"][0])),
            },
            Detector.DRIFT: {f"reference_bin_{i}": float(v) for i, v in enumerate(f["ref_hist"][0])},
        }
        views = tuple(
            DetectorStateView(
                detector=DETECTOR_NAMES[d],
                values={**own[d], "calibration_mean": float(cal_m[d]), "calibration_var": float(cal_v[d])},
                last_score=float(last_contrib[d]),
            )
            for d in Detector
        )
        baseline = scalar("ref_center")
        if np.isnan(baseline):
            baseline = scalar("last_baseline")
        return SeriesStateView(
            key=key,
            sample_count=ints["count"],
            last_sample_unix_nano=ints["last_time"],
            last_value=scalar("last_value"),
            baseline=baseline,
            last_score=scalar("last_score"),
            warming_up=ints["count"] < self.config.warmup_points,
            window_points=int(np.count_nonzero(~np.isnan(f["buf"][0]))),
            detectors=views,
            checkpoint_unix_nano=0 if entry is None else entry.checkpoint_unix_nano,
        )

    async def explain(self, *, tenant: str, key: SeriesKey, at_unix_nano: int | None) -> Explanation:
        """Explain the latest retained point of a series at or before `at_unix_nano` (or its last).

        Raises:
            NotFoundError: SERIES_NOT_FOUND, or POINT_NOT_RETAINED.
        """
        validate_series_key(key, "series")
        if self.multivariate is not None and key.name == MULTIVARIATE_METRIC:
            return await self.multivariate.explain(tenant=tenant, key=key, at_unix_nano=at_unix_nano)
        ref = SeriesRef(tenant, key)
        entry = self._table.peek(ref)
        points = self._ring.points(entry.slot) if entry is not None else []
        if not points:
            data, _ = await self._state_bytes(ref)
            if not data:
                raise NotFoundError(f"no state for series {key}", reason="SERIES_NOT_FOUND")
            raise NotFoundError(f"no recent point of {key} is held in memory", reason="POINT_NOT_RETAINED")
        chosen = [p for p in points if at_unix_nano is None or p.time_unix_nano <= at_unix_nano]
        if not chosen:
            raise NotFoundError(
                f"no retained point of {key} at or before the requested time", reason="POINT_NOT_RETAINED"
            )
        p = chosen[-1]
        threshold = self.config.threshold
        anomalous = p.score >= threshold
        half = self.config.half_surprise
        contributions = sorted(
            (
                (
                    DETECTOR_NAMES[d],
                    p.contributions[d],
                    self._weights[d],
                    half * p.contributions[d] / (1.0 - p.contributions[d]) if p.contributions[d] < 1 else 0.0,
                )
                for d in Detector
            ),
            key=lambda c: -c[1],
        )
        return Explanation(
            key=key,
            point=p,
            is_anomaly=anomalous,
            severity=p.severity if anomalous else 0,
            anomaly_type=anomaly_type_of(key.name, p.direction, p.detector) if anomalous else 0,
            threshold=threshold,
            contributions=tuple(contributions),
            text=explain(
                metric=key.name,
                value=p.value,
                baseline=p.baseline,
                score=p.score,
                threshold=threshold,
                severity=p.severity,
                detector=p.detector,
                direction=p.direction,
            ),
        )
