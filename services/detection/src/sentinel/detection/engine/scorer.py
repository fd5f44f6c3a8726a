"""Causal streaming scorer: per-series state in arrays, work vectorised across series.

``score(slots, times, values)`` accepts any number of points for any number of
series (several points of one series must be in time order). Points are
organised in *rounds*: round ``r`` holds the ``r``-th new point of every series
involved, and every point is scored against its own series' past only, then
learnt, exactly as if the rounds ran one after another.

Rounds are not run one after another, though. A call becomes a block of shape
``(rounds, series)`` (in chunks of bounded size) and everything that is not a
recurrence is computed for the whole block at once: the history each point
sees is known up front (the series' ring buffer plus the earlier new points of
the call), so the reference refreshes, the recent-window statistics, the
histograms and every tail transform are one vectorised pass each. Only the
cheap scalar recurrences (EWMA, CUSUM, seasonal profile, calibration, novelty
peak) step through the rounds, on ``(series,)`` columns. The arithmetic of
every element is the one of the round-by-round definition (same operations in
the same order), so results are identical, not merely close; the unit tests
hold a literal round-by-round reference to check it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from sentinel.detection import kernels as k
from sentinel.detection.engine.config import EngineConfig
from sentinel.detection.engine.state import EngineState
from sentinel.detection.engine.types import DETECTOR_NAMES, AnomalyKind, Detector, Severity
from sentinel.detection.kernels import compiled
from sentinel.detection.kernels.robust import MAD_TO_SIGMA, MEAN_AD_TO_SIGMA

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
NS_PER_DAY = 86_400_000_000_000
_LN10 = float(np.log(10.0))
_LN2 = np.log(2.0)
# The recurrence state learnt by StreamingScorer._recurrences, in _store_recurrences order.
_RECURRENCE_FIELDS = (
    "ew_mean",
    "ew_var",
    "cusum_pos",
    "cusum_neg",
    "seas_dev",
    "hod",
    "hod_n",
    "dow",
    "dow_n",
)


@dataclasses.dataclass(frozen=True, slots=True)
class ScoreBatch:
    """Result columns, one row per input point, in input order."""

    score: FloatArray
    """Ensemble score in [0, 1] (0 while warming up and for NaN values)."""
    is_anomaly: npt.NDArray[np.bool_]
    """``score >= config.threshold``."""
    severity: npt.NDArray[np.int8]
    """:class:`Severity` values from the score bands."""
    kind: npt.NDArray[np.int8]
    """:class:`AnomalyKind` of the dominant detector (NONE below the threshold)."""
    detector: npt.NDArray[np.int8]
    """:class:`Detector` with the largest weighted contribution."""
    direction: npt.NDArray[np.int8]
    """Sign of ``value - baseline``."""
    baseline: FloatArray
    """Expected value: the seasonal profile where it is trusted, else the window median."""
    contributions: FloatArray
    """``(n_points, n_detectors)``: each detector's weighted score on the score's scale."""
    threshold: float

    @property
    def detector_names(self) -> tuple[str, ...]:
        """Column names of :attr:`contributions`."""
        return DETECTOR_NAMES


def rounds_of(slots: IntArray) -> list[IntArray]:
    """Split point indices into rounds: round r holds the r-th point of each slot, in input order."""
    n = len(slots)
    if n == 0:
        return []
    order = np.argsort(slots, kind="stable")
    sorted_slots = slots[order]
    is_start = np.empty(n, dtype=bool)
    is_start[0] = True
    np.not_equal(sorted_slots[1:], sorted_slots[:-1], out=is_start[1:])
    group_start = np.maximum.accumulate(np.where(is_start, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - group_start
    by_round = np.argsort(rank, kind="stable")
    bounds = np.cumsum(np.bincount(rank))
    return np.split(by_round, bounds[:-1])


class StreamingScorer:
    """The detection engine: pure, synchronous, NumPy only."""

    chunk_points: int = 1 << 16
    """Upper bound on ``rounds x series`` of one block (bounds the temporary memory)."""
    refresh_rows: int = 4096
    """Reference refreshes are computed in batches of at most this many windows."""
    compiled_recurrences: bool = True
    """EWMA/CUSUM/seasonal recurrences in the compiled kernel; False runs the NumPy reference."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.state = EngineState(self.config)
        cfg = self.config
        self._log10_w = np.array(cfg.log10_weights)
        self._edges = np.array(cfg.psi_edges, dtype=np.float64)
        self._bands = np.array(cfg.severity_bands, dtype=np.float64)
        self._n_recent = max(cfg.recent_level, cfg.recent_spread)
        self._cal_a = np.sqrt(2.0 / (9.0 * float(len(self._edges))))
        # The kind of each detector above the threshold (SPIKE becomes DIP when the value is low).
        kinds = {
            Detector.SPIKE: AnomalyKind.SPIKE,
            Detector.LEVEL_SHIFT: AnomalyKind.LEVEL_SHIFT,
            Detector.CUSUM: AnomalyKind.LEVEL_SHIFT,
            Detector.VARIANCE_CHANGE: AnomalyKind.VARIANCE_CHANGE,
            Detector.SEASONAL: AnomalyKind.SEASONAL_DEVIATION,
            Detector.DRIFT: AnomalyKind.DRIFT,
        }
        self._kind_of = np.array([kinds[d] for d in Detector], dtype=np.int8)

    def reset(self, slots: npt.ArrayLike) -> None:
        """Forget the given slots (fresh state)."""
        self.state.reset(slots)

    def score(self, slots: npt.ArrayLike, times: npt.ArrayLike, values: npt.ArrayLike) -> ScoreBatch:
        """Score points and learn them.

        Args:
            slots: ``(n,)`` int slot of each point, ``0 <= slot < capacity``.
            times: ``(n,)`` int64 nanoseconds since the epoch (UTC); within one slot
                in non-decreasing order (the caller enforces its out-of-order policy).
            values: ``(n,)`` float64; NaN = missing (scored 0, not learnt).

        Returns:
            :class:`ScoreBatch` columns in input order.
        """
        s_all = np.asarray(slots, dtype=np.int64).ravel()
        t_all = np.asarray(times, dtype=np.int64).ravel()
        x_all = np.asarray(values, dtype=np.float64).ravel()
        n = len(s_all)
        if not len(t_all) == len(x_all) == n:
            raise ValueError("slots, times and values must have the same length")
        out_score = np.zeros(n)
        out_base = np.full(n, np.nan)
        out_det = np.zeros(n, dtype=np.int8)
        out_contrib = np.zeros((n, len(Detector)))
        if n == 0:
            return self._finish(x_all, out_score, out_base, out_det, out_contrib)
        if s_all.min() < 0 or s_all.max() >= self.config.capacity:
            raise ValueError("slot out of range")
        outs = (out_score, out_base, out_det, out_contrib)
        if n == 1 or (n <= self.chunk_points and len(np.unique(s_all)) == n):
            # one point per slot: a single round in input order
            self._block(s_all, np.arange(n, dtype=np.intp)[None, :], None, t_all, x_all, outs)
        else:
            self._blocks(s_all, t_all, x_all, outs)
        return self._finish(x_all, out_score, out_base, out_det, out_contrib)

    def _blocks(
        self,
        s_all: IntArray,
        t_all: IntArray,
        x_all: FloatArray,
        outs: tuple[FloatArray, FloatArray, npt.NDArray[np.int8], FloatArray],
    ) -> None:
        """Split a call into ``(rounds, series)`` blocks of bounded size and score them in order."""
        n = len(s_all)
        order = np.argsort(s_all, kind="stable").astype(np.intp)
        srt = s_all[order]
        is_start = np.empty(n, dtype=bool)
        is_start[0] = True
        np.not_equal(srt[1:], srt[:-1], out=is_start[1:])
        starts = np.flatnonzero(is_start)
        lengths = np.diff(np.append(starts, n))
        if lengths.min() != lengths.max():
            # longest series first: the series still active at round r are a prefix
            by_len = np.argsort(-lengths, kind="stable")
            starts, lengths = starts[by_len], lengths[by_len]
        slots = srt[starts]
        r0, r_max = 0, int(lengths[0])
        while r0 < r_max:
            n_act = int(np.count_nonzero(lengths > r0))
            rem = lengths[:n_act] - r0
            kc = max(1, min(int(rem[0]), self.chunk_points // n_act))
            # keep padding (series shorter than the block) below half of the block
            while kc > 1 and 2 * int(np.minimum(rem, kc).sum()) < n_act * kc:
                kc = max(1, kc // 2)
            rr = np.arange(kc, dtype=np.intp)[:, None]
            pos = starts[None, :n_act] + r0 + rr
            present = rr < rem[None, :]
            if present.all():
                idx = order[pos]
                self._block(slots[:n_act], idx, None, t_all, x_all, outs)
            else:
                idx = order[np.where(present, pos, 0)]
                self._block(slots[:n_act], idx, present, t_all, x_all, outs)
            r0 += kc

    def _finish(
        self,
        x: FloatArray,
        score: FloatArray,
        base: FloatArray,
        det: npt.NDArray[np.int8],
        contrib: FloatArray,
    ) -> ScoreBatch:
        cfg = self.config
        is_anom = score >= cfg.threshold
        severity = np.searchsorted(self._bands, score, side="right").astype(np.int8)
        severity += np.int8(Severity.INFO)
        with np.errstate(invalid="ignore"):
            direction = np.sign(_nan_to_num(x - base)).astype(np.int8)
        kind = self._kind_of[det]
        kind[(det == Detector.SPIKE) & (direction < 0)] = AnomalyKind.DIP
        kind[~is_anom] = AnomalyKind.NONE
        return ScoreBatch(score, is_anom, severity, kind, det, direction, base, contrib, cfg.threshold)

    def _block(
        self,
        s: IntArray,
        idx: npt.NDArray[np.intp],
        present: npt.NDArray[np.bool_] | None,
        t_all: IntArray,
        x_all: FloatArray,
        outs: tuple[FloatArray, FloatArray, npt.NDArray[np.int8], FloatArray],
    ) -> None:
        """Score then learn a block: ``idx[r, i]`` is the input index of series ``s[i]``'s round-r point.

        ``present[r, i]`` false marks padding (a series with fewer points), which
        is handled as a missing value and never written out.
        """
        cfg = self.config
        fl, it = self.state.floats, self.state.ints
        W = cfg.window
        K, n = idx.shape
        cols = np.arange(n, dtype=np.intp)
        X = x_all[idx]
        T = t_all[idx]
        if present is not None:
            X[~present] = np.nan
        V = ~np.isnan(X)
        all_valid = bool(V.all())
        Vi = V.astype(np.int64)
        NV = Vi.sum(axis=0)  # valid points per series in the block
        CV = np.cumsum(Vi, axis=0)
        CV -= Vi  # valid points before each point (exclusive)
        count0 = it["count"][s]
        pos0 = it["pos"][s]
        CNT = CV + count0

        # -- range seen before each point (fmax/fmin ignore NaN, like the per-point update)
        vmin0, vmax0 = fl["vmin"][s], fl["vmax"][s]
        VMIN = np.empty((K, n))
        VMAX = np.empty((K, n))
        VMIN[0], VMAX[0] = vmin0, vmax0
        if K > 1:
            np.fmin(np.fmin.accumulate(X[:-1], axis=0), vmin0, out=VMIN[1:])
            np.fmax(np.fmax.accumulate(X[:-1], axis=0), vmax0, out=VMAX[1:])
        vmin1 = np.fmin(VMIN[-1], X[-1])
        vmax1 = np.fmax(VMAX[-1], X[-1])
        SPREAD = VMAX - VMIN

        # -- the block's new values, compacted per series (missing ones are never learnt)
        if all_valid:
            NEW = np.ascontiguousarray(X.T)
        else:
            NEW = np.full((n, K), np.nan)
            rv, iv = np.nonzero(V)
            NEW[iv, CV[rv, iv]] = X[rv, iv]

        # -- robust reference, refreshed every `reference_refresh` points of a series
        base_ok = V & (CNT >= 2)
        need = base_ok & (CNT % cfg.reference_refresh == 0)
        rc0 = fl["ref_center"][s]
        fresh = np.isnan(rc0)
        if fresh.any():
            # a series without a reference refreshes at its first eligible point
            cand = base_ok & fresh[None, :]
            need |= cand & (np.cumsum(cand, axis=0) == 1)
        rs0 = fl["ref_scale"][s]
        rh0 = fl["ref_hist"][s]
        if need.any():
            rn, inn = np.nonzero(need)
            c_new, s_new, h_new = self._refresh(s[inn], pos0[inn], CV[rn, inn], NEW, inn, SPREAD[rn, inn])
            ridx = np.full((K, n), -1, dtype=np.intp)
            ridx[rn, inn] = np.arange(len(rn), dtype=np.intp)
            np.maximum.accumulate(ridx, axis=0, out=ridx)
            has = ridx >= 0
            CENTER = np.where(has, c_new[ridx], rc0)
            REF_SCALE = np.where(has, s_new[ridx], rs0)
            REF_HIST = np.where(has[:, :, None], h_new[ridx], rh0[None, :, :])
            last_ref = ridx[-1]
            ref_changed = last_ref >= 0
            rc1 = np.where(ref_changed, c_new[last_ref], rc0)
            rs1 = np.where(ref_changed, s_new[last_ref], rs0)
            rh1 = np.where(ref_changed[:, None], h_new[last_ref], rh0)
        else:
            CENTER = np.broadcast_to(rc0, (K, n))
            REF_SCALE = np.broadcast_to(rs0, (K, n))
            REF_HIST = np.broadcast_to(rh0, (K, n, rh0.shape[1]))
            rc1, rs1, rh1 = rc0, rs0, rh0
        FLOOR = self._floor(CENTER, SPREAD)
        SCALE = np.fmax(REF_SCALE, FLOOR)

        # -- recent windows of every point: the point itself, then its predecessors
        m = self._n_recent - 1
        old = fl["buf"][s[:, None], (pos0[:, None] - m + np.arange(m)) % W]  # (n, m), oldest first
        # Medians, counts, deviation sums and histograms of every window in one compiled pass
        # (bit-identical to kernels.shift_z / spread_z / binned_counts, see kernels.compiled).
        c_lev, n_lev, _, n_spr, sum_dev, hist = compiled.recent_window_stats(
            np.ascontiguousarray(X),
            np.concatenate((old, NEW), axis=1),
            np.ascontiguousarray(CV),
            cfg.recent_level,
            cfg.recent_spread,
            np.ascontiguousarray(CENTER),
            np.ascontiguousarray(SCALE),
            self._edges,
        )
        cen_f = CENTER.ravel()
        sc_f = SCALE.ravel()

        # -- detectors as z statistics; two-sided tails share one transform
        Z = np.empty((K, n, 5))
        with np.errstate(invalid="ignore", divide="ignore"):
            Z[:, :, 0] = (X - CENTER) / SCALE
        Z[:, :, 1] = k.shift_z_of(
            c_lev.ravel(), n_lev.ravel(), cen_f, sc_f, max_eff_n=cfg.level_eff_n
        ).reshape(K, n)
        z_spread = k.spread_z_of(
            sum_dev.ravel(), n_spr.ravel(), sc_f, max_eff_n=cfg.spread_eff_n, floor=FLOOR.ravel()
        )
        Z[:, :, 2] = z_spread.reshape(K, n)
        hist = hist.reshape(K * n, -1)
        psi_v = k.psi(REF_HIST.reshape(K * n, -1), hist)

        # -- recurrences, round by round: CUSUM on the EWMA residual and the seasonal profile
        U = np.empty((K, n, len(Detector)))
        cusum_max, seas_on, pred = self._recurrences(s, X, T, V, CNT, count0, SCALE, FLOOR, Z, all_valid)
        U[:, :, Detector.CUSUM] = 2.0 * cfg.cusum_k * cusum_max / _LN10

        # two-sided normal surprises of spike, level, variance, seasonal; PSI chi-square tail
        A = Z[:, :, :4]
        np.abs(A, out=A)
        A[np.isnan(A)] = 0.0
        aa = 2.0 / (9.0 * float(len(self._edges)))
        psi_x = psi_v * np.asarray(cfg.psi_eff_n, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            wh = (np.cbrt(np.maximum(psi_x, 0.0) / float(len(self._edges))) - (1.0 - aa)) / self._cal_a
        Z[:, :, 4] = wh.reshape(K, n)
        LP = k.normal_logsf(Z)
        LP[:, :, :4] += _LN2
        SU = k.surprise_from_logp(LP)
        U[:, :, Detector.SPIKE] = SU[:, :, 0]
        U[:, :, Detector.LEVEL_SHIFT] = SU[:, :, 1]
        U[:, :, Detector.VARIANCE_CHANGE] = SU[:, :, 2]
        U[:, :, Detector.SEASONAL] = np.where(seas_on, SU[:, :, 3], 0.0)
        U[:, :, Detector.DRIFT] = _nan_to_num(SU[:, :, 4])
        if not np.isfinite(U).all():
            U = np.nan_to_num(U, nan=0.0, posinf=cfg.calibration_cap)
        np.minimum(U, cfg.calibration_cap, out=U)

        # -- self-calibration (a recurrence), then the ensemble for the whole block
        ZC = self._calibrate(s, U, V & (cfg.calibration_start <= CNT))
        uw = k.surprise_from_logp(k.normal_logsf(ZC))
        uw += self._log10_w
        np.maximum(uw, 0.0, out=uw)
        contrib = uw / (uw + cfg.half_surprise)
        det = np.argmax(uw, axis=2).astype(np.int8)
        comb = uw.max(axis=2)
        raw = comb / (comb + cfg.half_surprise)
        warm = (cfg.warmup_points <= CNT) & V
        raw = np.where(warm, raw, 0.0)
        contrib = np.where(warm[:, :, None], contrib, 0.0)

        # -- novelty: the decayed peak is a recurrence over the valid points
        peak = fl["peak"][s]
        PP = np.empty((K, n))
        for r in range(K):
            pp = peak * cfg.novelty_decay
            PP[r] = pp
            peak = np.where(V[r], np.maximum(raw[r], pp), peak) if not all_valid else np.maximum(raw[r], pp)
        score = np.where(raw > PP, raw, raw * (1.0 - cfg.novelty_damping))
        baseline = np.where(seas_on, pred, CENTER)

        # -- outputs
        out_score, out_base, out_det, out_contrib = outs
        if present is None:
            flat = idx.ravel()
            out_score[flat] = score.ravel()
            out_base[flat] = baseline.ravel()
            out_det[flat] = det.ravel()
            out_contrib[flat] = contrib.reshape(K * n, -1)
        else:
            flat = idx[present]
            out_score[flat] = score[present]
            out_base[flat] = baseline[present]
            out_det[flat] = det[present]
            out_contrib[flat] = contrib[present]

        # -- learn: ring buffers, counters, range, reference, last values
        if all_valid and K <= W:
            q = np.arange(K)
            fl["buf"][s[:, None], (pos0[:, None] + q) % W] = NEW
        else:
            q = np.arange(K)[None, :]
            keep = (q < NV[:, None]) & (q >= NV[:, None] - W)
            rows = np.broadcast_to(s[:, None], keep.shape)[keep]
            fl["buf"][rows, ((pos0[:, None] + q) % W)[keep]] = NEW[keep]
        it["pos"][s] = (pos0 + NV) % W
        it["count"][s] = count0 + NV
        fl["vmin"][s], fl["vmax"][s] = vmin1, vmax1
        fl["ref_center"][s], fl["ref_scale"][s], fl["ref_hist"][s] = rc1, rs1, rh1
        fl["peak"][s] = peak
        if all_valid:
            last = np.full(n, K - 1)
            got = np.ones(n, dtype=bool)
        else:
            last = K - 1 - np.argmax(V[::-1], axis=0)
            got = NV > 0
        first = np.argmax(V, axis=0)
        starting = got & (count0 == 0)
        if starting.any():
            it["first_time"][s[starting]] = T[first[starting], cols[starting]]
        gs, gl, gc = s[got], last[got], cols[got]
        it["last_time"][gs] = T[gl, gc]
        fl["last_score"][gs] = score[gl, gc]
        fl["last_value"][gs] = X[gl, gc]
        fl["last_baseline"][gs] = baseline[gl, gc]

    def _refresh(
        self,
        slots: IntArray,
        pos0: IntArray,
        n_new: IntArray,
        new: FloatArray,
        new_row: npt.NDArray[np.intp],
        spread: FloatArray,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Robust reference (median, floored sigma, histogram) of ring buffers as they stand at some points.

        Row ``r`` is the buffer of ``slots[r]`` after its first ``n_new[r]`` new
        values (``new[new_row[r]]``, compacted) were written from ``pos0[r]`` on, in ring
        order (the order matters for the mean-deviation sum, so it is kept).
        """
        cfg = self.config
        W = cfg.window
        n_rows = len(slots)
        c_out = np.empty(n_rows)
        s_out = np.empty(n_rows)
        h_out = np.empty((n_rows, len(self._edges) + 1))
        buf = self.state.floats["buf"]
        step = self.refresh_rows
        for a in range(0, n_rows, step):
            b = min(a + step, n_rows)
            win = buf[slots[a:b]]
            c = n_new[a:b]
            q_max = min(int(c.max()), W)
            if q_max > 0:
                q = c[:, None] - q_max + np.arange(q_max)  # last min(c, W) new values
                ok = q >= 0
                rows = np.broadcast_to(np.arange(b - a)[:, None], q.shape)[ok]
                qq = q[ok]
                win[rows, (pos0[a:b][rows] + qq) % W] = new[new_row[a:b][rows], qq]
            c_out[a:b], s_out[a:b], h_out[a:b] = self._reference(win, spread[a:b])
        return c_out, s_out, h_out

    def _reference(self, win: FloatArray, spread: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Median, floored robust sigma and histogram of each window row (ring order kept).

        Full, finite windows (every warm series) sort once: median, MAD and
        histogram are all read off the sorted rows; the general kernels, which
        give the same numbers, handle the rest.
        """
        srt = np.sort(win, axis=1)
        full = np.isfinite(srt[:, 0]) & np.isfinite(srt[:, -1])
        if full.all():
            return self._reference_full(win, srt, spread)
        if not full.any():
            return self._reference_partial(win, spread)
        # Rows are independent: a few young series must not send every row down the slow path.
        center = np.empty(len(win))
        sc = np.empty(len(win))
        hist = np.empty((len(win), len(self._edges) + 1))
        part = ~full
        center[full], sc[full], hist[full] = self._reference_full(win[full], srt[full], spread[full])
        center[part], sc[part], hist[part] = self._reference_partial(win[part], spread[part])
        return center, sc, hist

    def _reference_partial(
        self, win: FloatArray, spread: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """:meth:`_reference` of windows that still hold NaN (the general kernels)."""
        center = k.nanmedian_rows(win)
        floor_r = self._floor(center, spread)
        sc = k.robust_scale(win, center, mean_dev_floor=self.config.mean_dev_floor, floor=floor_r)
        return center, sc, k.binned_counts(win, center, sc, self._edges)

    def _reference_full(
        self, win: FloatArray, srt: FloatArray, spread: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """:meth:`_reference` of full, finite windows (``srt`` = the rows sorted)."""
        cfg = self.config
        # One compiled pass per row (median, MAD, ring-order mean deviation, floor, histogram);
        # bit-identical to the NumPy kernels (see kernels.compiled and its tests).
        center, sc, hist = compiled.reference_sorted_rows(
            np.ascontiguousarray(win),
            np.ascontiguousarray(srt),
            np.ascontiguousarray(spread, dtype=np.float64),
            self._edges,
            cfg.abs_floor,
            cfg.rel_floor,
            cfg.range_floor,
            MAD_TO_SIGMA,
            cfg.mean_dev_floor * MEAN_AD_TO_SIGMA,
        )
        # Rows whose reference is not finite get the NumPy histogram (its handling of NaN bounds).
        bad = ~(np.isfinite(center) & np.isfinite(sc))
        if bad.any():
            hist[bad] = k.binned_counts(win[bad], center[bad], sc[bad], self._edges)
        return center, sc, hist

    def _reference_numpy(
        self, win: FloatArray, spread: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """:meth:`_reference` in NumPy only (full, finite windows): the reference of the compiled path."""
        cfg = self.config
        srt = np.sort(win, axis=1)
        w = win.shape[1]
        k1, k2 = (w - 1) // 2, w // 2
        center = 0.5 * (srt[:, k1] + srt[:, k2])
        floor_r = self._floor(center, spread)
        mean_ad = np.sum(np.abs(win - center[:, None]), axis=1) / w  # == nansum / count, ring order
        mad = k.mad_of_sorted(srt, center)
        sc = np.fmax(MAD_TO_SIGMA * mad, cfg.mean_dev_floor * MEAN_AD_TO_SIGMA * mean_ad)
        sc = np.fmax(sc, floor_r)
        if not np.isfinite(center).all() or not np.isfinite(sc).all():
            return center, sc, k.binned_counts(win, center, sc, self._edges)
        return center, sc, k.binned_counts_sorted(srt, center, sc, self._edges)

    def _recurrences(
        self,
        s: IntArray,
        X: FloatArray,
        T: IntArray,
        V: npt.NDArray[np.bool_],
        CNT: IntArray,
        count0: IntArray,
        SCALE: FloatArray,
        FLOOR: FloatArray,
        Z: FloatArray,
        all_valid: bool,
    ) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray]:
        """EWMA + CUSUM and the seasonal profile, stepped round by round; learns them into the state.

        Writes the seasonal z into ``Z[:, :, 3]`` and returns ``max(S+, S-)``,
        whether the seasonal detector speaks and its prediction, each ``(K, n)``.
        """
        cfg = self.config
        fl = self.state.floats
        ew_m, ew_v = fl["ew_mean"][s], fl["ew_var"][s]
        cp, cn = fl["cusum_pos"][s], fl["cusum_neg"][s]
        seas_dev = fl["seas_dev"][s]
        hod, hod_n = fl["hod"][s], fl["hod_n"][s]
        dow, dow_n = fl["dow"][s], fl["dow_n"][s]
        hod_f, hod_nf = hod.ravel(), hod_n.ravel()
        dow_f, dow_nf = dow.ravel(), dow_n.ravel()
        FH, FD, age_ok = self._seasonal_positions(s, T, V, count0, hod.shape[1], dow.shape[1])
        gain_scale = cfg.seasonal_gain * SCALE
        if self.compiled_recurrences:
            # One compiled pass per series (series own their seasonal bins, so their rounds run back
            # to back); the per-element arithmetic of _recurrence_rounds, bit-identical.
            ew_m, ew_v = np.ascontiguousarray(ew_m), np.ascontiguousarray(ew_v)
            cp, cn = np.ascontiguousarray(cp), np.ascontiguousarray(cn)
            seas_dev = np.ascontiguousarray(seas_dev)
            cusum_max, seas_on, pred_all, seas_z = compiled.recurrences(
                np.ascontiguousarray(X),
                np.ascontiguousarray(SCALE),
                np.ascontiguousarray(FLOOR),
                np.ascontiguousarray(gain_scale),
                np.ascontiguousarray(age_ok),
                np.ascontiguousarray(FH, dtype=np.int64),
                np.ascontiguousarray(FD, dtype=np.int64),
                ew_m,
                ew_v,
                cp,
                cn,
                seas_dev,
                hod_f,
                hod_nf,
                dow_f,
                dow_nf,
                cfg.cusum_k,
                cfg.cusum_cap,
                float(cfg.ewma_alpha),
                float(1.0 - np.asarray(cfg.ewma_alpha, dtype=np.float64)),
                float(cfg.seasonal_alpha),
                float(cfg.seasonal_min_visits),
                MEAN_AD_TO_SIGMA,
            )
            Z[:, :, 3] = seas_z
        else:
            cusum_max, seas_on, pred_all, ew_m, ew_v, cp, cn, seas_dev = self._recurrence_rounds(
                X, SCALE, FLOOR, Z, all_valid, FH, FD, age_ok, gain_scale,
                (ew_m, ew_v, cp, cn, seas_dev), (hod_f, hod_nf, dow_f, dow_nf),
            )  # fmt: skip
        self._store_recurrences(s, ew_m, ew_v, cp, cn, seas_dev, hod, hod_n, dow, dow_n)
        return cusum_max, seas_on, pred_all

    def _recurrence_rounds(
        self,
        X: FloatArray,
        SCALE: FloatArray,
        FLOOR: FloatArray,
        Z: FloatArray,
        all_valid: bool,
        FH: IntArray,
        FD: IntArray,
        age_ok: npt.NDArray[np.bool_],
        gain_scale: FloatArray,
        columns: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
        bins: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    ) -> tuple[
        FloatArray,
        npt.NDArray[np.bool_],
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
    ]:
        """The recurrences in NumPy, round by round over ``(n,)`` columns: the reference of the
        compiled kernel (``compiled_recurrences = False``). Updates the flat seasonal ``bins``
        in place; returns the outputs and the new ``columns``."""
        cfg = self.config
        K, n = X.shape
        ew_m, ew_v, cp, cn, seas_dev = columns
        hod_f, hod_nf, dow_f, dow_nf = bins
        cusum_max = np.empty((K, n))
        seas_on = np.empty((K, n), dtype=bool)
        pred_all = np.empty((K, n))
        kk, cap, ea, sa = cfg.cusum_k, cfg.cusum_cap, cfg.ewma_alpha, cfg.seasonal_alpha
        a_arr = np.asarray(ea, dtype=np.float64)
        one_minus_a = 1.0 - a_arr
        with np.errstate(invalid="ignore", divide="ignore"):
            for r in range(K):
                x = X[r]
                # CUSUM of the residual from the EWMA mean (a NaN residual leaves the sums)
                z = (x - ew_m) / SCALE[r]
                miss = np.isnan(z)
                new_p = cp + z
                new_p -= kk
                np.maximum(new_p, 0.0, out=new_p)
                np.minimum(new_p, cap, out=new_p)
                new_n = cn - z
                new_n -= kk
                np.maximum(new_n, 0.0, out=new_n)
                np.minimum(new_n, cap, out=new_n)
                if miss.any():
                    new_p[miss] = cp[miss]
                    new_n[miss] = cn[miss]
                cp, cn = new_p, new_n
                np.maximum(cp, cn, out=cusum_max[r])
                # EWMA mean/variance (a series starts at its first value)
                d = x - ew_m
                ad = a_arr * d
                new_m = ew_m + ad
                new_v = one_minus_a * (ew_v + ad * d)
                start = np.isnan(ew_m)
                if start.any():
                    new_m[start] = x[start]
                    new_v[start] = 0.0
                skip = np.isnan(x)
                if skip.any():
                    new_m[skip] = ew_m[skip]
                    new_v[skip] = ew_v[skip]
                ew_m, ew_v = new_m, new_v
                # seasonal profile: hour-of-day level plus day-of-week effect
                fh, fd = FH[r], FD[r]
                hod_pred = hod_f[fh]
                visits = hod_nf[fh]
                dow_raw = dow_f[fd]
                dow_eff = _nan_to_num(dow_raw)
                pred = hod_pred + dow_eff
                pred_all[r] = pred
                resid = x - pred
                seas_scale = np.fmax(MEAN_AD_TO_SIGMA * seas_dev, FLOOR[r])
                on = seas_on[r]
                np.greater_equal(visits, cfg.seasonal_min_visits, out=on)
                on &= age_ok[r]
                on &= seas_scale < gain_scale[r]
                Z[r, :, 3] = resid / seas_scale
                # learn the seasonal bins (targets as in k.seasonal_update)
                y = x - dow_eff
                ok = ~np.isnan(y)
                n_h = visits + 1.0
                step_h = np.maximum(sa, 1.0 / n_h)
                new_h = np.where(np.isnan(hod_pred), y, hod_pred + step_h * (y - hod_pred))
                if all_valid and ok.all():
                    hod_f[fh] = new_h
                    hod_nf[fh] = n_h
                else:
                    hod_f[fh[ok]] = new_h[ok]
                    hod_nf[fh[ok]] = n_h[ok]
                y2 = x - hod_pred
                ok2 = ~np.isnan(y2)
                n_d = dow_nf[fd] + 1.0
                step_d = np.maximum(sa, 1.0 / n_d)
                new_d = np.where(np.isnan(dow_raw), y2, dow_raw + step_d * (y2 - dow_raw))
                dow_f[fd[ok2]] = new_d[ok2]
                dow_nf[fd[ok2]] = n_d[ok2]
                # residual sigma from clipped residuals (NaN residual: unchanged)
                abs_res = np.minimum(np.abs(resid), 5.0 * seas_scale)
                upd = np.where(np.isnan(seas_dev), abs_res, seas_dev + ea * (abs_res - seas_dev))
                seas_dev = np.where(np.isnan(abs_res), seas_dev, upd)
        return cusum_max, seas_on, pred_all, ew_m, ew_v, cp, cn, seas_dev

    def _seasonal_positions(
        self, s: IntArray, T: IntArray, V: npt.NDArray[np.bool_], count0: IntArray, n_hours: int, n_days: int
    ) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_]]:
        """Flat hour-of-day and day-of-week bin of every point, and whether its series is old enough."""
        cfg = self.config
        K, n = T.shape
        cols = np.arange(n, dtype=np.intp)
        bins = k.seasonal_bins(T)
        FH = bins.hour + (cols * n_hours)
        FD = bins.dow + (cols * n_days)
        # first_time as each point sees it: a new series takes its first valid point's time
        ft0 = self.state.ints["first_time"][s]
        FT = np.broadcast_to(ft0, (K, n))
        starting = (count0 == 0) & V.any(axis=0)
        if starting.any():
            first = np.argmax(V, axis=0)
            after_first = np.arange(K)[:, None] > first[None, :]
            FT = np.where(starting[None, :] & after_first, T[first, cols][None, :], ft0[None, :])
        age_ok = cfg.seasonal_min_days <= (T - FT) / NS_PER_DAY
        return FH, FD, age_ok

    def _store_recurrences(self, s: IntArray, *columns: FloatArray) -> None:
        """Write back the recurrence state gathered for slots ``s`` (in :data:`_RECURRENCE_FIELDS` order)."""
        fl = self.state.floats
        for name, column in zip(_RECURRENCE_FIELDS, columns, strict=True):
            fl[name][s] = column

    def _calibrate(self, s: IntArray, U: FloatArray, learn: npt.NDArray[np.bool_]) -> FloatArray:
        """Each detector's surprise standardised by its running mean/variance on the series; learns them.

        Returns ``(K, n, n_detectors)`` z of the one-sided calibration test.
        """
        cfg = self.config
        fl, it = self.state.floats, self.state.ints
        cal_m, cal_v = fl["cal_mean"][s], fl["cal_var"][s]
        cal_n = it["cal_n"][s]
        ZC = np.empty_like(U)
        with np.errstate(invalid="ignore", divide="ignore"):
            for r in range(U.shape[0]):
                u = U[r]
                d = u - cal_m
                np.divide(d, np.sqrt(cal_v + 1e-6), out=ZC[r])
                lr = learn[r]
                if lr.any():
                    n_cal = cal_n + 1
                    a = np.maximum(cfg.calibration_alpha, 1.0 / n_cal)[:, None]
                    new_m = cal_m + a * d
                    new_v = (1.0 - a) * (cal_v + a * d * d)
                    if lr.all():
                        cal_m, cal_v, cal_n = new_m, new_v, n_cal
                    else:
                        cal_m = np.where(lr[:, None], new_m, cal_m)
                        cal_v = np.where(lr[:, None], new_v, cal_v)
                        cal_n = np.where(lr, n_cal, cal_n)
        fl["cal_mean"][s], fl["cal_var"][s] = cal_m, cal_v
        it["cal_n"][s] = cal_n
        return ZC

    def _floor(self, center: FloatArray, spread: FloatArray) -> FloatArray:
        cfg = self.config
        f = cfg.abs_floor + cfg.rel_floor * np.abs(_nan_to_num(center))
        return np.asarray(np.fmax(f, cfg.range_floor * _nan_to_num(spread)), dtype=np.float64)


def _nan_to_num(a: FloatArray) -> FloatArray:
    """``np.nan_to_num(a)`` (same values), skipping its fixed cost when ``a`` is all finite."""
    if np.isfinite(a).all():
        return a
    return np.asarray(np.nan_to_num(a), dtype=np.float64)
