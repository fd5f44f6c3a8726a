"""The multivariate monitor: LLM points in, per-(service, model) bucket anomalies out.

Every accepted ScoreSamples batch hands its `llm.*` points here (`observe`, on the event loop: a
dictionary look-up per series and one NumPy mask). Folding, scoring and refitting the pooled PyOD
model run on one dedicated worker thread, in submission order, never on the event loop and never
on the univariate micro-batcher's thread. PyOD is imported and its numba paths compiled there
during `start`, which the server awaits before health reports SERVING.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Gauge

from sentinel.detection.domain.batch import ScoreRequest
from sentinel.detection.domain.detectors import DetectorInfo, DetectorKind, Parameter
from sentinel.detection.domain.multivariate import (
    DETECTORS,
    BucketFolder,
    Finding,
    Group,
    MultivariateAnomaly,
    MultivariateConfig,
    MultivariateEpisodes,
    MultivariateScorer,
    input_column,
)
from sentinel.detection.domain.recent import RecentPoint
from sentinel.detection.domain.series import SeriesKey
from sentinel.detection.engine import AnomalyType
from sentinel.detection.kernels.multivariate import FEATURES
from sentinel.detection.ports import AnomalySink, StateStore
from sentinel.detection.service import DetectorStateView, Explanation, SeriesStateView
from sentinel.detection.settings import DetectionSettings
from sentinel.runtime.errors import NotFoundError

logger = logging.getLogger(__name__)

BUCKETS = Counter("sentinel_detection_multivariate_buckets_total", "Closed buckets", ["outcome"])
FITS = Counter("sentinel_detection_multivariate_fits_total", "Fits of the pooled multivariate model")
DROPPED = Counter("sentinel_detection_multivariate_dropped_points_total", "LLM points not folded", ["reason"])
CHECKPOINTS = Counter(
    "sentinel_detection_multivariate_checkpoints_total",
    "Checkpoints of the multivariate histories",
    ["outcome"],
)
GROUPS = Gauge("sentinel_detection_multivariate_groups", "(tenant, service, model) groups with history")
# Labelled children bound once: `.labels()` hashes its arguments and takes a lock on every call.
_CLOSED, _SCORED, _ANOMALOUS = (BUCKETS.labels(outcome) for outcome in ("closed", "scored", "anomalous"))
_DROPPED_OVERLOAD, _DROPPED_LATE = DROPPED.labels("overload"), DROPPED.labels("late")

_DESCRIPTIONS = {
    "iforest": "isolation forest: how few random splits isolate the bucket's standardised vector",
    "ecod": "empirical-CDF outlier detection: summed per-feature tail surprise (parameter-free)",
    "copod": "copula outlier detection: summed empirical-copula tail surprise (parameter-free)",
    "hbos": "histogram-based outlier score: summed per-feature log inverse histogram density",
}
_PARAMETERS = {
    "iforest": (("iforest_trees", "trees of the forest"), ("seed", "random state")),
    "ecod": (),
    "copod": (),
    "hbos": (("hbos_bins", "histogram bins per feature"),),
}
_SHARED = (
    ("bucket_s", "seconds per feature vector of a (service, model)"),
    ("min_calls", "calls a bucket needs to be scored"),
    ("history", "buckets per group for its median / robust sigma"),
    ("scale_floor", "floor of the robust sigma (log units)"),
    ("train_rows", "standardised vectors the pooled model is fitted on"),
    ("refit_every", "scored buckets between refits"),
    ("tail_fraction", "share of training scores fitted by the exponential tail"),
)
_TYPES = (
    AnomalyType.LATENCY_SPIKE,
    AnomalyType.ERROR_RATE_INCREASE,
    AnomalyType.TOKEN_USAGE_SPIKE,
    AnomalyType.COST_ANOMALY,
    AnomalyType.THROUGHPUT_DROP,
    AnomalyType.LEVEL_SHIFT,
)


def catalogue(
    config: MultivariateConfig, kind: DetectorKind = DetectorKind.UNSPECIFIED
) -> list[DetectorInfo]:
    """ListDetectors entries of the multivariate detectors and of their ensemble."""
    params = config.parameters()

    def parameters(names: Sequence[tuple[str, str]]) -> tuple[Parameter, ...]:
        return tuple(Parameter(name, params[name], text) for name, text in names)

    out = [
        DetectorInfo(
            name=name,
            description=_DESCRIPTIONS[name] + "; over per-(service, model) LLM feature vectors",
            kind=DetectorKind.MULTIVARIATE,
            parameters=parameters((*_PARAMETERS[name], *_SHARED)),
            weight=1.0 / len(DETECTORS),
            threshold=config.threshold,
            warmup_points=config.min_history,
            anomaly_types=_TYPES,
        )
        for name in DETECTORS
    ]
    out.append(
        DetectorInfo(
            name="multivariate_ensemble",
            description=(
                "Cauchy combination of the multivariate detectors' p-values (each calibrated on its "
                "training scores, exponential tail past the top), mapped to [0, 1] by u / (u + "
                "half_surprise); reported as metric llm.multivariate"
            ),
            kind=DetectorKind.ENSEMBLE,
            parameters=parameters(
                (
                    ("half_surprise", "combined surprise (-log10 p) mapped to score 0.5"),
                    ("threshold", "score at or above which a bucket is anomalous"),
                    ("min_history", "buckets a (service, model) needs before it is scored"),
                )
            ),
            weight=0.0,
            threshold=config.threshold,
            warmup_points=config.min_history,
            anomaly_types=_TYPES,
        )
    )
    return out if kind is DetectorKind.UNSPECIFIED else [d for d in out if d.kind is kind]


INDEX_KEY = "multivariate:v1:index"
TRAIN_KEY = "multivariate:v1:train"


def group_key(group: Group) -> str:
    """The state-store key of a group's history."""
    return f"multivariate:v1:group:{group.ref.digest}"


def _index_bytes(groups: Sequence[Group]) -> bytes:
    return json.dumps([[g.tenant, [list(pair) for pair in g.labels]] for g in groups]).encode()


def _index_groups(data: bytes) -> list[Group]:
    try:
        return [Group(str(t), tuple((str(k), str(v)) for k, v in labels)) for t, labels in json.loads(data)]
    except (ValueError, TypeError):
        logger.warning("ignoring an unreadable multivariate checkpoint index")
        return []


class MultivariateMonitor:
    """Feeds `llm.*` points to the bucket folder and the pooled scorer on one worker thread."""

    def __init__(
        self,
        *,
        config: MultivariateConfig,
        sink: AnomalySink,
        episode_gap_ns: int,
        max_pending: int = 256,
        scorer: MultivariateScorer | None = None,
        store: StateStore | None = None,
        checkpoint_interval_s: float = 0.0,
    ) -> None:
        self.config = config
        self._sink = sink
        self._store = store if store is not None and store.durable else None
        self._checkpoint_interval_s = checkpoint_interval_s
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._checkpoint_lock = asyncio.Lock()
        self._max_pending = max_pending
        self._folder = BucketFolder(
            width_ns=config.width_ns, grace_ns=int(config.grace_s * 1e9), max_groups=config.max_groups
        )
        self._scorer = scorer or MultivariateScorer(config)
        self._episodes = MultivariateEpisodes(gap_ns=episode_gap_ns)
        self._columns: dict[SeriesKey, int] = {}
        self._recent: OrderedDict[Group, deque[Finding]] = OrderedDict()  # worker thread only
        self.recent_buckets = 16
        self._pending: set[asyncio.Future[list[MultivariateAnomaly]]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self.warm_s = 0.0

    async def start(self) -> None:
        """Start the worker thread; import PyOD and compile its paths there (seconds); restore the
        histories from the store (the state store must be open) and refit on them."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="detection-multivariate")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        await loop.run_in_executor(self._executor, self._scorer.warm)
        self.warm_s = time.perf_counter() - started
        logger.info("multivariate detectors warmed in %.2f s", self.warm_s)
        if self._store is not None:
            try:
                await self._restore()
            except Exception:
                logger.warning("multivariate histories not restored; relearning them", exc_info=True)
            if self._checkpoint_interval_s > 0:
                self._checkpoint_task = asyncio.create_task(
                    self._checkpoint_loop(), name="multivariate-checkpoints"
                )

    async def _restore(self) -> None:
        assert self._store is not None
        assert self._executor is not None
        (index,) = await self._store.load([INDEX_KEY])
        if not index:
            return
        groups = _index_groups(index)[-self.config.max_groups :]
        blobs = await self._store.load([TRAIN_KEY, *(group_key(g) for g in groups)])
        histories = {g: b for g, b in zip(groups, blobs[1:], strict=True) if b}
        restored = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._scorer.restore, histories, blobs[0]
        )
        logger.info("restored the multivariate histories of %d groups", restored)

    async def checkpoint(self) -> int:
        """Write the histories changed since the last checkpoint, the index and the training set
        (one pipelined batch); returns the histories written."""
        if self._store is None or self._executor is None:
            return 0
        async with self._checkpoint_lock:
            groups, changed, train = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._scorer.export
            )
            states = {INDEX_KEY: _index_bytes(groups), TRAIN_KEY: train}
            states.update({group_key(g): data for g, data in changed.items()})
            try:
                await self._store.save(states)
            except Exception:
                CHECKPOINTS.labels("failed").inc()
                self._executor.submit(self._scorer.mark_changed, list(changed))
                raise
            CHECKPOINTS.labels("ok").inc()
            return len(changed)

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_interval_s)
            try:
                await self.checkpoint()
            except Exception:
                logger.warning("multivariate checkpoint failed; retrying next period", exc_info=True)

    async def drain(self) -> None:
        """Wait for every batch handed over so far to be folded and scored."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def stop(self, drain_s: float = 5.0) -> None:
        """Finish queued work (bounded), then stop the worker."""
        if self._executor is None:
            return
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint_task
            self._checkpoint_task = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), drain_s)
        try:
            saved = await self.checkpoint()
            if self._store is not None:
                logger.info("final multivariate checkpoint of %d groups", saved)
        except Exception:
            logger.exception("final multivariate checkpoint failed")
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None

    def catalogue(self, kind: DetectorKind = DetectorKind.UNSPECIFIED) -> list[DetectorInfo]:
        return catalogue(self.config, kind)

    def observe(
        self, tenant: str, request: ScoreRequest, accepted: npt.NDArray[np.int64] | None = None
    ) -> None:
        """Hand an accepted batch (its points at `accepted`, or all) to the worker, which picks
        the LLM points out. Costs the event loop one executor hand-off; never blocks."""
        if self._executor is None or len(request) == 0:
            return
        if len(self._pending) >= self._max_pending:
            _DROPPED_OVERLOAD.inc(len(request) if accepted is None else len(accepted))
            return
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._work, tenant, request, accepted
        )
        self._pending.add(future)
        future.add_done_callback(self._done)

    def _points(
        self, tenant: str, request: ScoreRequest, accepted: npt.NDArray[np.int64] | None
    ) -> (
        tuple[list[Group], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], np.ndarray]
        | None
    ):
        """The LLM points of a batch: groups, per point its group, input column, time, value."""
        cols = np.array([self._column(key) for key in request.series], dtype=np.int64)
        if not np.any(cols >= 0):
            return None
        group_of_series = np.full(len(request.series), -1, dtype=np.int64)
        index: dict[tuple[tuple[str, str], ...], int] = {}
        groups: list[Group] = []
        for s in np.flatnonzero(cols >= 0).tolist():
            labels = request.series[s].labels
            g = index.get(labels)
            if g is None:
                g = index[labels] = len(groups)
                groups.append(Group(tenant, labels))
            group_of_series[s] = g
        series_index = request.series_index if accepted is None else request.series_index[accepted]
        col_of_point = cols[series_index]
        keep = np.flatnonzero(col_of_point >= 0)
        if len(keep) == 0:
            return None
        at = keep if accepted is None else accepted[keep]
        return (
            groups,
            group_of_series[series_index[keep]],
            col_of_point[keep],
            request.time_unix_nano[at],
            request.value[at],
        )

    def _column(self, key: SeriesKey) -> int:
        col = self._columns.get(key)
        if col is None:
            col = input_column(key.name)
            if len(self._columns) >= 100_000:
                self._columns.clear()
            self._columns[key] = col
        return col

    def _work(
        self, tenant: str, request: ScoreRequest, accepted: npt.NDArray[np.int64] | None
    ) -> list[MultivariateAnomaly]:
        points = self._points(tenant, request, accepted)
        if points is None:
            return []
        late = self._folder.late_points
        closed = self._folder.fold(*points)
        if self._folder.late_points > late:
            _DROPPED_LATE.inc(self._folder.late_points - late)
        if not closed:
            return []
        fits = self._scorer.fits
        findings = self._scorer.observe(closed)
        FITS.inc(self._scorer.fits - fits)
        GROUPS.set(self._scorer.groups)
        _CLOSED.inc(len(closed))
        _SCORED.inc(len(findings))
        changes: list[MultivariateAnomaly] = []
        for finding in findings:
            if finding.is_anomaly:
                _ANOMALOUS.inc()
            changes += self._episodes.observe(finding)
            recent = self._recent.pop(finding.group, None) or deque(maxlen=self.recent_buckets)
            recent.append(finding)
            self._recent[finding.group] = recent
        while len(self._recent) > self.config.max_groups:
            self._recent.popitem(last=False)
        return changes

    async def _findings(self, tenant: str, key: SeriesKey) -> tuple[list[Finding], int]:
        """The retained findings of the group of `key` and its buckets of history (worker thread)."""
        group = Group(tenant, key.labels)
        if self._executor is None:
            return [], 0

        def read() -> tuple[list[Finding], int]:
            return list(self._recent.get(group, ())), self._scorer.history_length(group)

        return await asyncio.get_running_loop().run_in_executor(self._executor, read)

    async def series_state(self, *, tenant: str, key: SeriesKey) -> SeriesStateView:
        """GetSeriesState of `llm.multivariate{labels}`: the group's last scored bucket.

        Raises:
            NotFoundError: SERIES_NOT_FOUND (no bucket of that group scored yet).
        """
        findings, history = await self._findings(tenant, key)
        if not findings:
            raise NotFoundError(f"no scored bucket for series {key}", reason="SERIES_NOT_FOUND")
        f = findings[-1]
        top = f.top_feature
        per_feature = {
            **{name: v for name, v in zip(FEATURES, f.values, strict=True)},
            **{f"{name}_baseline": v for name, v in zip(FEATURES, f.baselines, strict=True)},
            **{f"{name}_z": v for name, v in zip(FEATURES, f.z, strict=True)},
        }
        detectors = (
            *(
                DetectorStateView(name, {"p_value": p, "share": share}, score)
                for name, p, share, score in zip(
                    DETECTORS, f.detector_p, f.shares, f.detector_scores, strict=True
                )
            ),
            DetectorStateView("features", per_feature, f.score),
        )
        return SeriesStateView(
            key=key,
            sample_count=history,
            last_sample_unix_nano=f.start_unix_nano,
            last_value=f.values[top],
            baseline=f.baselines[top],
            last_score=f.score,
            warming_up=False,
            window_points=history,
            detectors=detectors,
            checkpoint_unix_nano=0,
        )

    async def explain(self, *, tenant: str, key: SeriesKey, at_unix_nano: int | None) -> Explanation:
        """ExplainScore of `llm.multivariate{labels}`: the latest retained bucket at or before a time.

        Raises:
            NotFoundError: SERIES_NOT_FOUND, or POINT_NOT_RETAINED.
        """
        findings, _ = await self._findings(tenant, key)
        if not findings:
            raise NotFoundError(f"no scored bucket for series {key}", reason="SERIES_NOT_FOUND")
        chosen = [f for f in findings if at_unix_nano is None or f.start_unix_nano <= at_unix_nano]
        if not chosen:
            raise NotFoundError(
                f"no retained bucket of {key} at or before the requested time", reason="POINT_NOT_RETAINED"
            )
        f = chosen[-1]
        top = f.top_feature
        weight = 1.0 / len(DETECTORS)
        return Explanation(
            key=key,
            point=RecentPoint(
                time_unix_nano=f.start_unix_nano,
                value=f.values[top],
                baseline=f.baselines[top],
                score=f.score,
                severity=f.severity,
                detector=int(np.argmax(f.shares)),
                direction=1 if f.z[top] >= 0 else -1,
                contributions=f.detector_scores,
            ),
            is_anomaly=f.is_anomaly,
            severity=f.severity,
            anomaly_type=f.anomaly_type,
            threshold=self.config.threshold,
            contributions=tuple(
                sorted(
                    (
                        (name, score, weight, -float(np.log10(p)))
                        for name, score, p in zip(DETECTORS, f.detector_scores, f.detector_p, strict=True)
                    ),
                    key=lambda c: -c[1],
                )
            ),
            text=f.explanation,
        )

    def _done(self, future: asyncio.Future[list[MultivariateAnomaly]]) -> None:
        self._pending.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            logger.error("multivariate scoring failed", exc_info=exc)
            return
        changes = future.result()
        if changes:
            self._sink.publish_multivariate(changes, threshold=self.config.threshold)


def multivariate_monitor(
    settings: DetectionSettings, sink: AnomalySink, store: StateStore | None = None
) -> MultivariateMonitor | None:
    """The monitor the settings ask for (None when SENTINEL_MULTIVARIATE_ENABLED is false)."""
    if not settings.multivariate_enabled:
        return None
    config = MultivariateConfig(
        bucket_s=settings.multivariate_bucket_s,
        grace_s=min(30.0, settings.multivariate_bucket_s / 2),
        history=settings.multivariate_history,
        refit_every=settings.multivariate_refit_every,
        threshold=settings.multivariate_threshold,
    )
    return MultivariateMonitor(
        config=config,
        sink=sink,
        episode_gap_ns=int(settings.episode_gap_s * 1e9),
        store=store,
        checkpoint_interval_s=settings.checkpoint_interval_s,
    )
