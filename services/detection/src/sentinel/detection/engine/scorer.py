"""Causal streaming scorer: per-series state in arrays, work vectorised across series.

``score(slots, times, values)`` accepts any number of points for any number of
series (several points of one series must be in time order). Points are
processed in *rounds*: round ``r`` holds the ``r``-th new point of every series
involved, so each round is one vectorised pass over up to ``n_series`` rows and
every point is scored against its own series' past only, then learnt.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from sentinel.detection import kernels as k
from sentinel.detection.engine.config import EngineConfig
from sentinel.detection.engine.state import EngineState
from sentinel.detection.engine.types import DETECTOR_NAMES, AnomalyKind, Detector, Severity
from sentinel.detection.kernels.robust import MEAN_AD_TO_SIGMA

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
NS_PER_DAY = 86_400_000_000_000
_LN10 = float(np.log(10.0))


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

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.state = EngineState(self.config)
        cfg = self.config
        self._log10_w = np.array(cfg.log10_weights)
        self._edges = np.array(cfg.psi_edges, dtype=np.float64)
        self._bands = np.array(cfg.severity_bands, dtype=np.float64)
        m = max(cfg.recent_level, cfg.recent_spread) - 1
        self._lag = np.arange(1, m + 1, dtype=np.int64)

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
        s_all = np.asarray(slots, dtype=np.int64)
        t_all = np.asarray(times, dtype=np.int64)
        x_all = np.asarray(values, dtype=np.float64)
        n = len(s_all)
        if not len(t_all) == len(x_all) == n:
            raise ValueError("slots, times and values must have the same length")
        if n and (s_all.min() < 0 or s_all.max() >= self.config.capacity):
            raise ValueError("slot out of range")
        out_score = np.zeros(n)
        out_base = np.full(n, np.nan)
        out_det = np.zeros(n, dtype=np.int8)
        out_contrib = np.zeros((n, len(Detector)))
        for idx in rounds_of(s_all):
            score, base, det, contrib = self._round(s_all[idx], t_all[idx], x_all[idx])
            out_score[idx] = score
            out_base[idx] = base
            out_det[idx] = det
            out_contrib[idx] = contrib
        return self._finish(x_all, out_score, out_base, out_det, out_contrib)

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
        severity = (Severity.INFO + np.searchsorted(self._bands, score, side="right")).astype(np.int8)
        with np.errstate(invalid="ignore"):
            direction = np.sign(np.nan_to_num(x - base)).astype(np.int8)
        kind = np.zeros(len(x), dtype=np.int8)
        spike = det == Detector.SPIKE
        kind[spike] = np.where(direction[spike] < 0, AnomalyKind.DIP, AnomalyKind.SPIKE)
        kind[(det == Detector.LEVEL_SHIFT) | (det == Detector.CUSUM)] = AnomalyKind.LEVEL_SHIFT
        kind[det == Detector.VARIANCE_CHANGE] = AnomalyKind.VARIANCE_CHANGE
        kind[det == Detector.SEASONAL] = AnomalyKind.SEASONAL_DEVIATION
        kind[det == Detector.DRIFT] = AnomalyKind.DRIFT
        kind[~is_anom] = AnomalyKind.NONE
        return ScoreBatch(score, is_anom, severity, kind, det, direction, base, contrib, cfg.threshold)

    def _round(
        self, s: IntArray, t: IntArray, x: FloatArray
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int8], FloatArray]:
        """Score then learn one point for each of the distinct slots ``s``."""
        cfg = self.config
        st = self.state
        fl, it = st.floats, st.ints
        W = cfg.window
        valid = ~np.isnan(x)
        count = it["count"][s]

        # -- robust reference, cached and refreshed every `reference_refresh` points
        spread = fl["vmax"][s] - fl["vmin"][s]
        need = valid & (count >= 2) & ((count % cfg.reference_refresh == 0) | np.isnan(fl["ref_center"][s]))
        if need.any():
            ss = s[need]
            win = fl["buf"][ss]
            c = k.nanmedian_rows(win)
            floor_r = self._floor(c, spread[need])
            sc = k.robust_scale(win, c, mean_dev_floor=cfg.mean_dev_floor, floor=floor_r)
            fl["ref_center"][ss] = c
            fl["ref_scale"][ss] = sc
            fl["ref_hist"][ss] = k.binned_counts(win, c, sc, self._edges)
        center = fl["ref_center"][s]
        floor = self._floor(center, spread)
        scale = np.fmax(fl["ref_scale"][s], floor)

        # -- recent windows: the new point then its predecessors (NaN where there are none)
        lag_idx = (it["pos"][s][:, None] - self._lag[None, :]) % W
        recent = np.concatenate((x[:, None], fl["buf"][s[:, None], lag_idx]), axis=1)
        rec_level = recent[:, : cfg.recent_level]
        rec_spread = recent[:, : cfg.recent_spread]

        u = np.zeros((len(s), len(Detector)))
        with np.errstate(invalid="ignore", divide="ignore"):
            z_spike = (x - center) / scale
        u[:, Detector.SPIKE] = k.two_sided_surprise(z_spike)
        u[:, Detector.LEVEL_SHIFT] = k.two_sided_surprise(
            k.shift_z(rec_level, center, scale, max_eff_n=cfg.level_eff_n)
        )
        u[:, Detector.VARIANCE_CHANGE] = k.two_sided_surprise(
            k.spread_z(rec_spread, scale, max_eff_n=cfg.spread_eff_n, floor=floor)
        )
        ok_ref = ~np.isnan(center)
        if ok_ref.any():
            hist = k.binned_counts(rec_spread, center, scale, self._edges)
            psi_v = k.psi(fl["ref_hist"][s], hist)
            u[:, Detector.DRIFT] = np.nan_to_num(
                k.surprise_from_logp(k.psi_logsf(psi_v, cfg.psi_eff_n, len(self._edges) + 1))
            )

        # -- CUSUM on residuals from the EWMA mean, in robust-sigma units
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (x - fl["ew_mean"][s]) / scale
        cp, cn = k.cusum_update(fl["cusum_pos"][s], fl["cusum_neg"][s], r, cfg.cusum_k, cfg.cusum_cap)
        u[:, Detector.CUSUM] = 2.0 * cfg.cusum_k * np.maximum(cp, cn) / _LN10

        # -- seasonal profile (hour of day + day of week)
        bins = k.seasonal_bins(t)
        rows = np.arange(len(s))
        hod_s, hod_n = fl["hod"][s], fl["hod_n"][s]
        dow_s, dow_n = fl["dow"][s], fl["dow_n"][s]
        hod_pred = hod_s[rows, bins.hour]
        dow_eff = np.nan_to_num(dow_s[rows, bins.dow])
        pred = hod_pred + dow_eff
        resid = x - pred
        seas_scale = np.fmax(MEAN_AD_TO_SIGMA * fl["seas_dev"][s], floor)
        age_days = (t - it["first_time"][s]) / NS_PER_DAY
        seas_on = (
            (hod_n[rows, bins.hour] >= cfg.seasonal_min_visits)
            & (age_days >= cfg.seasonal_min_days)
            & (seas_scale < cfg.seasonal_gain * scale)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            u[:, Detector.SEASONAL] = np.where(seas_on, k.two_sided_surprise(resid / seas_scale), 0.0)

        # -- self-calibration: each detector's surprise against its own long-run
        # mean and spread on this series, as a one-sided normal tail
        u = np.minimum(np.nan_to_num(u, nan=0.0, posinf=cfg.calibration_cap), cfg.calibration_cap)
        cal_m, cal_v = fl["cal_mean"][s], fl["cal_var"][s]
        with np.errstate(invalid="ignore", divide="ignore"):
            z_cal = (u - cal_m) / np.sqrt(cal_v + 1e-6)
        u_cal = k.surprise_from_logp(k.normal_logsf(z_cal))

        # -- ensemble: weighted Bonferroni over detectors, fixed saturating map to [0, 1]
        uw = np.maximum(u_cal + self._log10_w[None, :], 0.0)
        contrib = uw / (uw + cfg.half_surprise)
        det = np.argmax(uw, axis=1).astype(np.int8)
        comb = uw.max(axis=1)
        raw = comb / (comb + cfg.half_surprise)
        warm = (count >= cfg.warmup_points) & valid
        raw = np.where(warm, raw, 0.0)
        contrib = np.where(warm[:, None], contrib, 0.0)
        peak_prev = fl["peak"][s] * cfg.novelty_decay
        score = np.where(raw > peak_prev, raw, raw * (1.0 - cfg.novelty_damping))
        baseline = np.where(seas_on, pred, center)

        # -- learn the points (valid ones only)
        v = valid
        vs, xv, tv = s[v], x[v], t[v]
        pos = it["pos"][vs]
        fl["buf"][vs, pos] = xv
        it["pos"][vs] = (pos + 1) % W
        first = it["count"][vs] == 0
        it["first_time"][vs[first]] = tv[first]
        it["count"][vs] += 1
        it["last_time"][vs] = tv
        fl["vmin"][vs] = np.fmin(fl["vmin"][vs], xv)
        fl["vmax"][vs] = np.fmax(fl["vmax"][vs], xv)
        m, var = k.ewma_update(fl["ew_mean"][vs], fl["ew_var"][vs], xv, cfg.ewma_alpha)
        fl["ew_mean"][vs], fl["ew_var"][vs] = m, var
        fl["cusum_pos"][vs], fl["cusum_neg"][vs] = cp[v], cn[v]
        hv, dv = bins.hour[v], bins.dow[v]
        new_hod, new_hod_n = k.seasonal_update(hod_s[v], hod_n[v], hv, xv - dow_eff[v], cfg.seasonal_alpha)
        new_dow, new_dow_n = k.seasonal_update(dow_s[v], dow_n[v], dv, xv - hod_pred[v], cfg.seasonal_alpha)
        fl["hod"][vs], fl["hod_n"][vs] = new_hod, new_hod_n
        fl["dow"][vs], fl["dow_n"][vs] = new_dow, new_dow_n
        # The residual sigma learns from clipped residuals so an outlier cannot inflate it.
        abs_res = np.minimum(np.abs(resid[v]), 5.0 * seas_scale[v])
        dev_old = fl["seas_dev"][vs]
        fl["seas_dev"][vs] = np.where(
            np.isnan(dev_old), abs_res, dev_old + cfg.ewma_alpha * (abs_res - dev_old)
        )
        fl["seas_dev"][vs] = np.where(np.isnan(abs_res), dev_old, fl["seas_dev"][vs])
        learn = v & (count >= cfg.calibration_start)
        if learn.any():
            ls = s[learn]
            n_cal = it["cal_n"][ls] + 1
            a_cal = np.maximum(cfg.calibration_alpha, 1.0 / n_cal)[:, None]
            d_cal = u[learn] - cal_m[learn]
            fl["cal_mean"][ls] = cal_m[learn] + a_cal * d_cal
            fl["cal_var"][ls] = (1.0 - a_cal) * (cal_v[learn] + a_cal * d_cal * d_cal)
            it["cal_n"][ls] = n_cal
        fl["peak"][vs] = np.maximum(raw[v], peak_prev[v])
        fl["last_score"][vs] = score[v]
        fl["last_value"][vs] = xv
        fl["last_baseline"][vs] = baseline[v]
        return score, baseline, det, contrib

    def _floor(self, center: FloatArray, spread: FloatArray) -> FloatArray:
        cfg = self.config
        f = cfg.abs_floor + cfg.rel_floor * np.abs(np.nan_to_num(center))
        return np.asarray(np.fmax(f, cfg.range_floor * np.nan_to_num(spread)), dtype=np.float64)
