"""The engine's one parameter set (the same for every series; nothing is tuned per series)."""

from __future__ import annotations

import dataclasses
import math

from sentinel.detection.engine.types import Detector


@dataclasses.dataclass(frozen=True, slots=True)
class EngineConfig:
    """Every parameter of the streaming scorer, with its default.

    Attributes:
        capacity: number of series slots held in memory (state arrays are
            ``capacity x window`` float64: 10 000 x 256 x 8 B = 20 MB).
        window: ring-buffer length per series (points of history the robust
            reference is computed over).
        warmup_points: points a series must have seen before it scores above 0.
        reference_refresh: the robust reference (median, sigma, histogram) of a
            series is recomputed every this many of its points and cached in
            between; 1 recomputes on every point. It keeps the per-point cost
            independent of ``window``.
        recent_level: points (the new one included) whose median is compared
            with the reference median by the level-shift test.
        recent_spread: points (new one included) of the variance-change and
            PSI tests.
        level_eff_n: cap on the effective sample size of the level-shift test
            (autocorrelated telemetry has few independent points).
        spread_eff_n: same cap for the variance-change test.
        psi_eff_n: effective sample size of the recent window in the PSI
            chi-square approximation.
        psi_edges: PSI bin edges in robust-sigma units around the reference median.
        mean_dev_floor: weight of the mean-absolute-deviation floor of the
            robust sigma (MAD is 0 on counts and flat stretches).
        range_floor: the sigma floor as a fraction of the range (max - min) the
            series has shown so far; stops quantised/flat series from exploding.
        rel_floor: sigma floor as a fraction of ``|median|``.
        abs_floor: absolute sigma floor.
        ewma_alpha: smoothing factor of the EWMA mean the CUSUM tracks.
        cusum_k: CUSUM allowance in sigma units.
        cusum_cap: cap of each CUSUM sum (sigma units).
        seasonal_alpha: EWMA factor of each seasonal bin (per visit).
        seasonal_min_visits: visits an hour-of-day bin needs before the seasonal
            detector uses it.
        seasonal_min_days: days of history before the seasonal detector speaks.
        seasonal_gain: the seasonal detector speaks only when its residual sigma
            is below ``seasonal_gain`` times the robust sigma of the window,
            i.e. when the profile explains part of the variance.
        calibration_alpha: EWMA factor of each detector's long-run mean and
            variance of its own surprise, per series (the self-calibration: a
            detector that is often surprised on a series counts for less there).
        calibration_cap: surprises are capped at this before calibration, so one
            huge outlier cannot inflate the long-run variance.
        calibration_start: points a series must have before its calibration
            statistics start learning (the first surprises come from a tiny window).
        weights: prior weight of each detector in the weighted-Bonferroni
            ensemble (normalised to sum 1), in :class:`Detector` order.
        half_surprise: combined calibrated surprise ``-log10 p`` mapped to score
            0.5; ``score = u / (u + half_surprise)``.
        novelty_decay: per-point decay of the remembered peak score.
        novelty_damping: fraction of the score removed when a point does not
            exceed the decayed peak, i.e. merely repeats a recent, stronger
            alarm (1 = only new peaks score; 0 disables the novelty stage).
        threshold: score at or above which ``is_anomaly`` is true.
        severity_bands: lower score bounds of low, medium, high and critical;
            below the first band a point is info.
    """

    capacity: int = 10_000
    window: int = 256
    warmup_points: int = 100
    reference_refresh: int = 4
    recent_level: int = 12
    recent_spread: int = 32
    level_eff_n: float = 4.0
    spread_eff_n: float = 8.0
    psi_eff_n: float = 8.0
    psi_edges: tuple[float, ...] = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
    mean_dev_floor: float = 0.5
    range_floor: float = 0.005
    rel_floor: float = 1e-6
    abs_floor: float = 1e-9
    ewma_alpha: float = 0.02
    cusum_k: float = 0.5
    cusum_cap: float = 40.0
    seasonal_alpha: float = 0.05
    seasonal_min_visits: int = 3
    seasonal_min_days: float = 1.0
    seasonal_gain: float = 0.6
    calibration_alpha: float = 0.003
    calibration_cap: float = 30.0
    calibration_start: int = 16
    weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    half_surprise: float = 6.0
    novelty_decay: float = 0.997
    novelty_damping: float = 1.0
    threshold: float = 0.7
    severity_bands: tuple[float, float, float, float] = (0.7, 0.8, 0.9, 0.95)

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.window < 8:
            raise ValueError("capacity must be >= 1 and window >= 8")
        if not 1 <= self.recent_level <= self.window or not 3 <= self.recent_spread <= self.window:
            raise ValueError("recent windows must fit in the window")
        if len(self.weights) != len(Detector) or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError(f"weights needs {len(Detector)} non-negative values with a positive sum")
        if list(self.psi_edges) != sorted(self.psi_edges):
            raise ValueError("psi_edges must be sorted")
        if list(self.severity_bands) != sorted(self.severity_bands):
            raise ValueError("severity_bands must be sorted")
        if not 0.0 < self.threshold <= 1.0 or self.reference_refresh < 1:
            raise ValueError("threshold must be in (0, 1] and reference_refresh >= 1")

    @property
    def log10_weights(self) -> tuple[float, ...]:
        """``log10`` of the normalised weights (``-inf`` for a disabled detector)."""
        total = sum(self.weights)
        return tuple(math.log10(w / total) if w > 0 else -math.inf for w in self.weights)

    def parameters(self) -> dict[str, float]:
        """Scalar parameters by name (for ``ListDetectors``)."""
        out: dict[str, float] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[f.name] = float(v)
        return out
