"""The block engine against the engine as first written, round by round, bit for bit.

:class:`RoundScorer` is the deliberately plain reference: it scores as
:class:`~sentinel.detection.engine.StreamingScorer` is defined (round ``r`` =
the ``r``-th point of every series, scored then learnt before round ``r + 1``),
literally one vectorised pass per round with the per-round code of the first
version. The block engine computes everything that is not a recurrence for
many rounds at once and must give identical outputs and identical state.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt
import pytest

from sentinel.detection import kernels as k
from sentinel.detection.engine import Detector, EngineConfig, ScoreBatch, StreamingScorer, rounds_of
from sentinel.detection.kernels.robust import MEAN_AD_TO_SIGMA

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
NS_PER_DAY = 86_400_000_000_000
_LN10 = float(np.log(10.0))


class RoundScorer(StreamingScorer):
    """Round-by-round scoring with the original per-round code (same state, same outputs)."""

    def score(self, slots: npt.ArrayLike, times: npt.ArrayLike, values: npt.ArrayLike) -> ScoreBatch:
        s_all = np.asarray(slots, dtype=np.int64)
        t_all = np.asarray(times, dtype=np.int64)
        x_all = np.asarray(values, dtype=np.float64)
        n = len(s_all)
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
        lag_idx = (it["pos"][s][:, None] - np.arange(1, self._n_recent)[None, :]) % W
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


NS_MIN = 60_000_000_000
T0 = 1_700_000_000_000_000_000
FIELDS = ("score", "is_anomaly", "severity", "kind", "detector", "direction", "baseline", "contributions")


def assert_same(a: ScoreBatch, b: ScoreBatch) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def assert_same_state(a: StreamingScorer, b: StreamingScorer) -> None:
    for name, arr in a.state.ints.items():
        np.testing.assert_array_equal(arr, b.state.ints[name], err_msg=name)
    for name, farr in a.state.floats.items():
        np.testing.assert_array_equal(farr, b.state.floats[name], err_msg=name)


def random_calls(
    rng: np.random.Generator, capacity: int, n_calls: int, max_points: int
) -> list[tuple[IntArray, IntArray, FloatArray]]:
    """Ragged calls: repeated slots, missing values, flat stretches, outliers, level changes."""
    clock = np.full(capacity, T0, dtype=np.int64)
    level = rng.normal(50.0, 20.0, capacity)
    calls = []
    for c in range(n_calls):
        m = int(rng.integers(1, max_points + 1))
        if c % 4 == 0:  # one point per slot
            s = rng.choice(capacity, min(m, capacity), replace=False).astype(np.int64)
        elif c % 4 == 1:  # lockstep rounds
            rounds = max(1, m // capacity)
            s = np.tile(rng.permutation(capacity), rounds).astype(np.int64)
        else:
            s = rng.integers(0, capacity, m).astype(np.int64)
        if rng.random() < 0.1:
            level[s] += rng.normal(0.0, 30.0, len(s))
        x = level[s] + rng.normal(0.0, 2.0, len(s))
        x[rng.random(len(s)) < 0.05] *= 8.0
        x[rng.random(len(s)) < 0.06] = np.nan
        x[rng.random(len(s)) < 0.15] = 3.0
        t = np.empty(len(s), dtype=np.int64)
        for i, slot in enumerate(s.tolist()):
            clock[slot] += int(rng.integers(1, 180)) * NS_MIN
            t[i] = clock[slot]
        calls.append((s, t, x))
    return calls


@pytest.mark.parametrize(
    ("seed", "chunk_points", "refresh_rows"), [(1, 1 << 16, 4096), (2, 7, 3), (3, 64, 16), (4, 1, 1)]
)
def test_block_engine_matches_the_round_by_round_reference(
    seed: int, chunk_points: int, refresh_rows: int
) -> None:
    rng = np.random.default_rng(seed)
    cfg = EngineConfig(capacity=24, window=32, warmup_points=20, reference_refresh=3, calibration_start=8)
    fast, ref = StreamingScorer(cfg), RoundScorer(cfg)
    fast.chunk_points, fast.refresh_rows = chunk_points, refresh_rows
    for i, (s, t, x) in enumerate(random_calls(rng, cfg.capacity, 50, 150)):
        if i == 25:
            fast.reset([1, 2, 3])
            ref.reset([1, 2, 3])
        assert_same(fast.score(s, t, x), ref.score(s, t, x))
    assert_same_state(fast, ref)


def test_block_engine_matches_the_reference_on_long_default_series() -> None:
    rng = np.random.default_rng(11)
    cfg = dataclasses.replace(EngineConfig(), capacity=5)
    n = 1500
    t = T0 + np.arange(n, dtype=np.int64) * 5 * NS_MIN
    x = 100.0 + 10.0 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0.0, 1.0, n)
    x[900:] += 25.0
    x[1200] = np.nan
    slots = np.repeat(np.arange(5, dtype=np.int64), n)
    times = np.tile(t, 5)
    values = np.concatenate([x * (1 + i) for i in range(5)])
    fast, ref = StreamingScorer(cfg), RoundScorer(cfg)
    fast.chunk_points = 2048  # several blocks, each spanning many rounds and wrapping the buffer
    assert_same(
        fast.score(slots[:4000], times[:4000], values[:4000]),
        ref.score(slots[:4000], times[:4000], values[:4000]),
    )
    assert_same(
        fast.score(slots[4000:], times[4000:], values[4000:]),
        ref.score(slots[4000:], times[4000:], values[4000:]),
    )
    assert_same_state(fast, ref)


def test_empty_and_single_point_calls() -> None:
    cfg = EngineConfig(capacity=3, window=32, warmup_points=4, recent_level=20, recent_spread=10)
    fast, ref = StreamingScorer(cfg), RoundScorer(cfg)
    empty = fast.score([], [], [])
    assert len(empty.score) == 0
    assert empty.contributions.shape == (0, len(Detector))
    for i in range(40):
        args = ([i % 3], [T0 + i * NS_MIN], [float(i % 5)])
        assert_same(fast.score(*args), ref.score(*args))
    assert_same_state(fast, ref)
