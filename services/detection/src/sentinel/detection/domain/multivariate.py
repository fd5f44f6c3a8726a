"""Multivariate detection over per-(service, model) feature vectors of the LLM metrics.

The stream of points is folded into fixed-width buckets per group (a tenant and the label set of
its `llm.*` series, i.e. service, model, provider); a closed bucket becomes one feature vector
(`kernels.multivariate.FEATURES`). Each vector is standardised against its own group's recent
buckets (median and robust sigma, in variance-stabilised units), so one pooled model with one
parameter set serves every group: IForest, ECOD, COPOD and HBOS fitted on the recent standardised
vectors of all groups. Each detector's raw score is calibrated to a p-value by the empirical
distribution of its training scores (exponential tail past the top), the four are combined by
the Cauchy combination test, and the combined p maps to a score in [0, 1).

PyOD is imported only when a model is first fitted (it costs seconds and ~200 MB), and every
method here is meant for one worker thread: nothing is locked.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sentinel.detection.domain.episodes import anomaly_id_for
from sentinel.detection.domain.series import SeriesKey, SeriesRef
from sentinel.detection.engine import AnomalyType, Severity
from sentinel.detection.kernels import multivariate as mk

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

METRIC = "llm.multivariate"
DETECTORS: tuple[str, ...] = ("iforest", "ecod", "copod", "hbos")
# Features shown but kept out of the model: load follows the hour and the weekday, which a
# history of hours cannot know (the univariate seasonal detector owns it). With it in, most
# false alarms were quiet nights and weekends (evaluation.multivariate, seed 7: F1 0.45 -> 0.57).
UNMODELLED: tuple[str, ...] = ("request_rate",)
_MODELLED = np.array([name not in UNMODELLED for name in mk.FEATURES], dtype=np.float64)
_INPUT_COLUMN = {name: i for i, name in enumerate(mk.INPUTS)}


def input_column(name: str) -> int:
    """The accumulator column of a metric name, or -1 if the multivariate model ignores it."""
    return _INPUT_COLUMN.get(name, -1)


@dataclass(frozen=True)
class MultivariateConfig:
    """The one parameter set of the multivariate detectors (no per-series tuning).

    Attributes:
        bucket_s: width of a bucket (one feature vector per group per bucket).
        grace_s: a bucket closes once the stream's time passed its end by this much.
        min_calls: buckets with fewer calls are not scored (their means are noise).
        history: closed buckets kept per group for its median / robust sigma.
        min_history: buckets a group needs before its vectors are scored.
        train_rows: standardised vectors (all groups) the pooled model is fitted on.
        min_train: vectors needed before the first fit.
        refit_every: closed, standardised buckets between refits.
        threshold: score at or above which a bucket is anomalous.
        half_surprise: combined -log10 p mapped to score 0.5.
        scale_floor: floor of the robust sigma, in log units (0.05 ~ 5 %).
        z_clip: standardised values are clipped to +-z_clip.
        tail_fraction: share of the training scores that the exponential tail is fitted to.
        iforest_trees: trees of the isolation forest.
        hbos_bins: histogram bins of HBOS.
        max_groups: groups held (least recently seen dropped beyond).
        seed: of the isolation forest and of the training subsample.
    """

    bucket_s: float = 60.0
    grace_s: float = 30.0
    min_calls: int = 5
    history: int = 288
    min_history: int = 24
    train_rows: int = 4096
    min_train: int = 128
    refit_every: int = 256
    threshold: float = 0.6
    half_surprise: float = 2.0
    scale_floor: float = 0.05
    z_clip: float = 20.0
    tail_fraction: float = 0.05
    iforest_trees: int = 100
    hbos_bins: int = 10
    max_groups: int = 10_000
    seed: int = 0
    # Lower score bounds of LOW..CRITICAL: combined p <= 1e-3, 1e-4, 1e-5, 1e-6 at half_surprise 2
    # (rank-based detectors saturate near p ~ 1e-6, so bands spaced in score would stay LOW).
    severity_bands: tuple[float, float, float, float] = (0.6, 2 / 3, 5 / 7, 0.75)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if self.bucket_s <= 0 or self.history < self.min_history or self.min_history < 3:
            raise ValueError("bucket_s must be > 0 and 3 <= min_history <= history")
        if self.min_train < 16 or self.train_rows < self.min_train:
            raise ValueError("16 <= min_train <= train_rows")

    @property
    def width_ns(self) -> int:
        return int(self.bucket_s * 1e9)

    def parameters(self) -> dict[str, float]:
        """Every numeric parameter by name (for ListDetectors)."""
        return {
            f.name: float(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), int | float)
        }


# -- folding points into buckets ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    """The unit one feature vector describes: a tenant and the labels of its LLM series."""

    tenant: str
    labels: tuple[tuple[str, str], ...]

    @property
    def key(self) -> SeriesKey:
        return SeriesKey(METRIC, self.labels)

    @property
    def ref(self) -> SeriesRef:
        return SeriesRef(self.tenant, self.key)


@dataclass(frozen=True, slots=True)
class ClosedBucket:
    """One group's finished bucket: its start and its features in their own units."""

    group: Group
    start_unix_nano: int
    calls: int
    raw: FloatArray  # (N_FEATURES,)


@dataclass
class _Open:
    bucket: int
    sums: FloatArray
    counts: FloatArray


class BucketFolder:
    """Folds points into one open bucket per group; a bucket closes when time passes it.

    A group's bucket closes when a later point of that group arrives, or when the latest time
    seen in the stream is `grace_ns` past the bucket's end (so a group that goes quiet still
    closes). Points of an already closed bucket are counted in `late_points` and dropped.
    """

    def __init__(self, *, width_ns: int, grace_ns: int, max_groups: int) -> None:
        self.width_ns = width_ns
        self.grace_ns = grace_ns
        self.max_groups = max_groups
        self.late_points = 0
        self._open: dict[Group, _Open] = {}
        self._watermark = -(2**62)

    def __len__(self) -> int:
        return len(self._open)

    def fold(
        self,
        groups: Sequence[Group],
        group_index: IntArray,
        column: IntArray,
        times: IntArray,
        values: FloatArray,
    ) -> list[ClosedBucket]:
        """Add points; returns the buckets they (and the time they carry) closed, oldest first.

        Args:
            groups: the distinct groups of this call.
            group_index: Shape (n,), per point an index into `groups`.
            column: Shape (n,), per point its input (`kernels.multivariate.INPUTS` index).
            times: Shape (n,), ns since the epoch, any order.
            values: Shape (n,), finite.
        """
        closed: list[ClosedBucket] = []
        if len(times) == 0:
            return closed
        bucket = times // self.width_ns
        first = int(bucket.min())
        span = int(bucket.max()) - first + 1
        cells, cell_of_point = np.unique(group_index * span + (bucket - first), return_inverse=True)
        sums, counts = mk.bucket_sums(cell_of_point.reshape(-1).astype(np.int64), column, values, len(cells))
        over = self._watermark // self.width_ns  # buckets below this index were closed by time
        for c, cell in enumerate(cells.tolist()):  # sorted by (group, bucket)
            group, b = groups[cell // span], first + cell % span
            state = self._open.get(group)
            if b < over:
                self.late_points += int(counts[c].sum())
                continue
            if state is None or b > state.bucket:
                if state is not None:
                    closed.append(self._close(group, state))
                self._open[group] = _Open(b, sums[c].copy(), counts[c].copy())
            elif b == state.bucket:
                state.sums += sums[c]
                state.counts += counts[c]
            else:
                self.late_points += int(counts[c].sum())
            if group in self._open:  # most recently seen last: the LRU order beyond max_groups
                self._open[group] = self._open.pop(group)
        while len(self._open) > self.max_groups:
            group = next(iter(self._open))
            closed.append(self._close(group, self._open.pop(group)))
        closed += self.flush(int(times.max()) - self.grace_ns)
        closed.sort(key=lambda cb: cb.start_unix_nano)
        return closed

    def flush(self, watermark_ns: int) -> list[ClosedBucket]:
        """Close every bucket that ends at or before `watermark_ns` (monotone: never goes back)."""
        self._watermark = max(self._watermark, watermark_ns)
        last_closed = self._watermark // self.width_ns  # buckets below this index are over
        done = [g for g, s in self._open.items() if s.bucket < last_closed]
        return [self._close(g, self._open.pop(g)) for g in done]

    def _close(self, group: Group, state: _Open) -> ClosedBucket:
        raw = mk.raw_features(state.sums[None, :], state.counts[None, :], self.width_ns / 1e9)[0]
        calls = int(max(state.counts[mk.LATENCY], state.sums[mk.REQUESTS]))
        return ClosedBucket(group, state.bucket * self.width_ns, calls, raw)


# -- scoring -------------------------------------------------------------------------------------


class Detector(Protocol):
    """The part of a PyOD detector used here."""

    decision_scores_: Any

    def fit(self, x: FloatArray) -> Any: ...

    def decision_function(self, x: FloatArray) -> Any: ...


def pyod_detectors(config: MultivariateConfig) -> list[Detector]:
    """IForest, ECOD, COPOD and HBOS with the configured parameters (imports PyOD)."""
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD
    from pyod.models.hbos import HBOS
    from pyod.models.iforest import IForest

    return [
        IForest(n_estimators=config.iforest_trees, random_state=config.seed, n_jobs=1),
        ECOD(),
        COPOD(),
        HBOS(n_bins=config.hbos_bins),
    ]


@dataclass(frozen=True, slots=True)
class Finding:
    """What the model said about one closed bucket.

    Attributes:
        detector_scores: per detector (`DETECTORS` order), its own calibrated score in [0, 1).
        detector_p: per detector, its calibrated p-value.
        shares: per detector, its share of the Cauchy statistic (sums to 1).
        values, baselines, z: per feature: the bucket's value, the group's median, the
            standardised deviation (NaN value = not observed; its z is 0).
        top_feature: index of the feature with the largest |z|.
    """

    group: Group
    start_unix_nano: int
    end_unix_nano: int
    score: float
    p_value: float
    is_anomaly: bool
    severity: int
    anomaly_type: int
    detector_scores: tuple[float, ...]
    detector_p: tuple[float, ...]
    shares: tuple[float, ...]
    values: tuple[float, ...]
    baselines: tuple[float, ...]
    z: tuple[float, ...]
    top_feature: int
    explanation: str


_RING_HEADER = struct.Struct("<4sIII")  # magic, rows, n, pos
_RING_MAGIC = b"MVR1"


class _History:
    """A ring of one group's recent feature vectors (model space)."""

    __slots__ = ("n", "pos", "rows")

    def __init__(self, size: int) -> None:
        self.rows = np.full((size, mk.N_FEATURES), np.nan)
        self.n = 0
        self.pos = 0

    def add(self, row: FloatArray) -> None:
        self.rows[self.pos] = row
        self.pos = (self.pos + 1) % len(self.rows)
        self.n = min(self.n + 1, len(self.rows))


def _ring_bytes(rows: FloatArray, n: int, pos: int) -> bytes:
    return _RING_HEADER.pack(_RING_MAGIC, len(rows), n, pos) + rows.astype("<f8").tobytes()


def _ring_from(data: bytes, size: int) -> tuple[FloatArray, int, int] | None:
    """(rows, n, pos) of an exported ring, or None if it is unreadable or of another size."""
    if len(data) < _RING_HEADER.size:
        return None
    magic, rows, n, pos = _RING_HEADER.unpack_from(data)
    if magic != _RING_MAGIC or len(data) != _RING_HEADER.size + rows * mk.N_FEATURES * 8:
        return None
    arr = np.frombuffer(data, dtype="<f8", offset=_RING_HEADER.size).reshape(rows, mk.N_FEATURES)
    if rows == size and n <= rows and pos < rows:
        return arr.astype(np.float64), n, pos
    # Another ring size: keep the most recent rows in time order.
    ordered = np.roll(arr, -pos, axis=0)[rows - n :] if n == rows else arr[:n]
    keep = ordered[-size:]
    out = np.full((size, mk.N_FEATURES), np.nan)
    out[: len(keep)] = keep
    return out, len(keep), len(keep) % size


@dataclass
class _Model:
    detectors: list[Detector]
    train_sorted: list[FloatArray]
    rows: int


_TYPE_UP = (
    AnomalyType.LEVEL_SHIFT,
    AnomalyType.LATENCY_SPIKE,
    AnomalyType.LATENCY_SPIKE,
    AnomalyType.TOKEN_USAGE_SPIKE,
    AnomalyType.COST_ANOMALY,
    AnomalyType.ERROR_RATE_INCREASE,
)
_TYPE_DOWN = (
    AnomalyType.THROUGHPUT_DROP,
    AnomalyType.LEVEL_SHIFT,
    AnomalyType.LEVEL_SHIFT,
    AnomalyType.LEVEL_SHIFT,
    AnomalyType.COST_ANOMALY,
    AnomalyType.LEVEL_SHIFT,
)


def anomaly_type_of_feature(feature: int, z: float) -> AnomalyType:
    """The anomaly type named after the most deviating feature and its direction."""
    return (_TYPE_UP if z >= 0 else _TYPE_DOWN)[feature]


def _from_model_space(center: FloatArray) -> FloatArray:
    out = np.expm1(center)
    out[mk.ERROR_RATE] = np.sin(center[mk.ERROR_RATE]) ** 2
    return out


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.4g}"


def explain_finding(
    group: Group,
    score: float,
    threshold: float,
    values: FloatArray,
    baselines: FloatArray,
    z: FloatArray,
    detector_p: Sequence[float],
    bucket_s: float,
) -> str:
    """One line a person can act on: which metrics moved together, by how much, who saw it."""
    order = [int(i) for i in np.argsort(-np.abs(z), kind="stable")]
    moved = [i for i in order if abs(z[i]) >= 2.0][:3] or order[:1]
    parts = [f"{mk.FEATURES[i]} {_fmt(values[i])} vs {_fmt(baselines[i])} ({z[i]:+.1f} sigma)" for i in moved]
    lead = int(np.argmin(detector_p))
    labels = ",".join(f"{k}={v}" for k, v in group.labels)
    verdict = "anomalous" if score >= threshold else "normal"
    return (
        f"{METRIC}{{{labels}}} over {bucket_s:g} s: score {score:.2f} ({verdict}, threshold "
        f"{threshold:g}); " + ", ".join(parts) + f"; led by {DETECTORS[lead]} (p={detector_p[lead]:.2g})"
    )


class MultivariateScorer:
    """Standardises closed buckets per group and scores them with the pooled, calibrated model."""

    def __init__(
        self,
        config: MultivariateConfig,
        *,
        make_detectors: Callable[[MultivariateConfig], list[Detector]] = pyod_detectors,
    ) -> None:
        self.config = config
        self._make = make_detectors
        self._histories: dict[Group, _History] = {}
        self._train = np.zeros((config.train_rows, mk.N_FEATURES))
        self._train_n = 0
        self._train_pos = 0
        self._since_fit = 0
        self._model: _Model | None = None
        self._dirty: set[Group] = set()
        self._weights = np.full(len(DETECTORS), 1.0 / len(DETECTORS))
        self._bands = np.array(config.severity_bands, dtype=np.float64)
        self.fits = 0

    @property
    def fitted(self) -> bool:
        return self._model is not None

    @property
    def groups(self) -> int:
        return len(self._histories)

    def export(self) -> tuple[list[Group], dict[Group, bytes], bytes]:
        """Every group (least recently seen first), the histories changed since the last export,
        and the training ring: what a checkpoint writes. Clears the changed set."""
        changed = {g: _ring_bytes(h.rows, h.n, h.pos) for g, h in self._histories.items() if g in self._dirty}
        self._dirty.clear()
        return list(self._histories), changed, _ring_bytes(self._train, self._train_n, self._train_pos)

    def mark_changed(self, groups: Sequence[Group]) -> None:
        """Export these groups again next time (their checkpoint failed)."""
        self._dirty.update(g for g in groups if g in self._histories)

    def restore(self, histories: dict[Group, bytes], train: bytes | None) -> int:
        """Load exported histories and training ring (unreadable ones are skipped) and fit the
        model if there is enough to fit on; returns the groups restored."""
        restored = 0
        for group, data in histories.items():
            ring = _ring_from(data, self.config.history)
            if ring is None:
                continue
            hist = _History(self.config.history)
            hist.rows, hist.n, hist.pos = ring
            self._histories[group] = hist
            restored += 1
        ring = _ring_from(train, self.config.train_rows) if train else None
        if ring is not None:
            self._train, self._train_n, self._train_pos = ring
        if self._train_n >= self.config.min_train:
            self.fit()
        return restored

    def history_length(self, group: Group) -> int:
        """Closed buckets of `group` in its history (0 if unknown)."""
        hist = self._histories.get(group)
        return 0 if hist is None else hist.n

    def observe(self, buckets: Sequence[ClosedBucket]) -> list[Finding]:
        """Score the closed buckets of groups with enough history (once a model is fitted), add
        them to their histories, refit when due. Returns a finding per scored bucket."""
        cfg = self.config
        rows: list[tuple[ClosedBucket, FloatArray, FloatArray, FloatArray]] = []
        for cb in buckets:
            if cb.calls < cfg.min_calls:
                continue
            hist = self._histories.pop(cb.group, None) or _History(cfg.history)
            self._histories[cb.group] = hist  # most recently seen last
            x = mk.model_space(cb.raw[None, :])[0]
            self._dirty.add(cb.group)
            if hist.n >= cfg.min_history:
                center, scale = mk.robust_center_scale(hist.rows[None, : hist.n], cfg.scale_floor)
                scale = mk.sampling_floor(scale, np.array([float(cb.calls)]))
                z = mk.standardise(x[None, :], center, scale, cfg.z_clip)[0] * _MODELLED
                rows.append((cb, x, z, center[0]))
                # Flagged buckets are kept too: leaving them out truncates the training scores
                # exactly where the p-values are read, which makes every tail p too small.
                self._add_train(z)
            hist.add(x)
        while len(self._histories) > cfg.max_groups:
            self._dirty.discard(dropped := next(iter(self._histories)))
            del self._histories[dropped]
        findings = self._score(rows) if rows and self._model is not None else []
        if self._train_n >= cfg.min_train and (self._model is None or self._since_fit >= cfg.refit_every):
            self.fit()
        return findings

    def _add_train(self, z: FloatArray) -> None:
        self._train[self._train_pos] = z
        self._train_pos = (self._train_pos + 1) % len(self._train)
        self._train_n = min(self._train_n + 1, len(self._train))
        self._since_fit += 1

    def fit(self) -> None:
        """Fit the four detectors on the recent standardised vectors of every group."""
        x = self._train[: self._train_n].copy()
        detectors = self._make(self.config)
        train_sorted = []
        for det in detectors:
            det.fit(x)
            train_sorted.append(np.sort(np.asarray(det.decision_scores_, dtype=np.float64)))
        self._model = _Model(detectors, train_sorted, len(x))
        self._since_fit = 0
        self.fits += 1

    def pvalues(self, z: FloatArray) -> FloatArray:
        """Calibrated p-value of each detector for standardised rows: shape (m, len(DETECTORS))."""
        assert self._model is not None
        tail = max(10, int(self.config.tail_fraction * self._model.rows))
        cols = [
            mk.tail_pvalues(train, np.asarray(det.decision_function(z), dtype=np.float64), tail)
            for det, train in zip(self._model.detectors, self._model.train_sorted, strict=True)
        ]
        return np.column_stack(cols)

    def _score(self, rows: list[tuple[ClosedBucket, FloatArray, FloatArray, FloatArray]]) -> list[Finding]:
        cfg = self.config
        z = np.stack([r[2] for r in rows])
        p = self.pvalues(z)
        combined, share = mk.cauchy_combine(p, self._weights)
        score = mk.surprise_score(combined, cfg.half_surprise)
        own = mk.surprise_score(p, cfg.half_surprise)
        severity = np.searchsorted(self._bands, score, side="right") + int(Severity.INFO)
        out = []
        for i, (cb, _x, zi, center) in enumerate(rows):
            anomalous = bool(score[i] >= cfg.threshold)
            top = int(np.argmax(np.abs(zi)))
            baselines = _from_model_space(center)
            out.append(
                Finding(
                    group=cb.group,
                    start_unix_nano=cb.start_unix_nano,
                    end_unix_nano=cb.start_unix_nano + cfg.width_ns,
                    score=float(score[i]),
                    p_value=float(combined[i]),
                    is_anomaly=anomalous,
                    severity=int(severity[i]) if anomalous else int(Severity.UNSPECIFIED),
                    anomaly_type=int(anomaly_type_of_feature(top, float(zi[top]))) if anomalous else 0,
                    detector_scores=tuple(own[i].tolist()),
                    detector_p=tuple(p[i].tolist()),
                    shares=tuple(share[i].tolist()),
                    values=tuple(cb.raw.tolist()),
                    baselines=tuple(baselines.tolist()),
                    z=tuple(zi.tolist()),
                    top_feature=top,
                    explanation=explain_finding(
                        cb.group,
                        float(score[i]),
                        cfg.threshold,
                        cb.raw,
                        baselines,
                        zi,
                        p[i].tolist(),
                        cfg.bucket_s,
                    ),
                )
            )
        return out

    def warm(self) -> None:
        """Compile and exercise every detector path once (numba compiles on first use)."""
        rng = np.random.default_rng(self.config.seed)
        x = rng.normal(0.0, 1.0, (max(self.config.min_train, 256), mk.N_FEATURES))
        for det in self._make(self.config):
            det.fit(x)
            det.decision_function(x[:4] + 3.0)


# -- episodes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MultivariateAnomaly:
    """An episode of anomalous buckets of one group, as of its latest bucket.

    `peak` is the highest-scoring finding; `end_unix_nano` is None while the episode is open.
    """

    anomaly_id: str
    group: Group
    start_unix_nano: int
    last_unix_nano: int
    end_unix_nano: int | None
    peak: Finding
    point_count: int
    opened: bool  # first seen in this change


class MultivariateEpisodes:
    """Anomalous buckets of a group within `gap_ns` of the previous one join its episode."""

    def __init__(self, *, gap_ns: int) -> None:
        self.gap_ns = gap_ns
        self._open: dict[Group, MultivariateAnomaly] = {}

    def observe(self, finding: Finding) -> list[MultivariateAnomaly]:
        """Fold one finding (in time order per group); returns the episode changes it caused."""
        changes: list[MultivariateAnomaly] = []
        current = self._open.pop(finding.group, None)
        if current is not None and finding.start_unix_nano - current.last_unix_nano > self.gap_ns:
            changes.append(dataclasses.replace(current, end_unix_nano=current.last_unix_nano, opened=False))
            current = None
        if finding.is_anomaly:
            if current is None:
                current = MultivariateAnomaly(
                    anomaly_id=anomaly_id_for(finding.group.ref, finding.start_unix_nano),
                    group=finding.group,
                    start_unix_nano=finding.start_unix_nano,
                    last_unix_nano=finding.start_unix_nano,
                    end_unix_nano=None,
                    peak=finding,
                    point_count=1,
                    opened=True,
                )
            else:
                current = dataclasses.replace(
                    current,
                    last_unix_nano=finding.start_unix_nano,
                    peak=finding if finding.score > current.peak.score else current.peak,
                    point_count=current.point_count + 1,
                    opened=False,
                )
            changes.append(current)
        if current is not None:
            self._open[finding.group] = current
        return changes
