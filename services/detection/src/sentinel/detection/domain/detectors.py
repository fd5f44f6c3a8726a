"""The detector catalogue (ListDetectors), derived from the engine's one parameter set (pure)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from sentinel.detection.domain.explain import detector_description
from sentinel.detection.engine import DETECTOR_NAMES, AnomalyType, Detector, EngineConfig
from sentinel.runtime.errors import InvalidArgumentError

ENSEMBLE = "ensemble"


class DetectorKind(enum.IntEnum):
    """Values of `sentinel.api.detection.v1.DetectorKind`."""

    UNSPECIFIED = 0
    UNIVARIATE = 1
    MULTIVARIATE = 2
    ENSEMBLE = 3


@dataclass(frozen=True)
class Parameter:
    name: str
    value: float
    description: str


@dataclass(frozen=True)
class DetectorInfo:
    """One detector as ListDetectors describes it."""

    name: str
    description: str
    kind: DetectorKind
    parameters: tuple[Parameter, ...]
    weight: float
    threshold: float
    warmup_points: int
    anomaly_types: tuple[AnomalyType, ...]


_SHARED = (
    ("window", "points of history per series (ring buffer)"),
    ("reference_refresh", "points between recomputations of the robust reference"),
    ("mean_dev_floor", "weight of the mean-absolute-deviation floor of the robust sigma"),
    ("range_floor", "sigma floor as a fraction of the range seen so far"),
    ("rel_floor", "sigma floor as a fraction of |median|"),
    ("abs_floor", "absolute sigma floor"),
    ("calibration_alpha", "EWMA factor of the per-series self-calibration"),
)
_OWN: dict[Detector, tuple[tuple[str, str], ...]] = {
    Detector.SPIKE: (),
    Detector.LEVEL_SHIFT: (
        ("recent_level", "points whose median is compared with the reference median"),
        ("level_eff_n", "cap on the effective sample size of the level test"),
    ),
    Detector.VARIANCE_CHANGE: (
        ("recent_spread", "points of the recent spread window"),
        ("spread_eff_n", "cap on the effective sample size of the spread test"),
    ),
    Detector.CUSUM: (
        ("ewma_alpha", "EWMA factor of the mean the CUSUM tracks"),
        ("cusum_k", "allowance, robust sigmas"),
        ("cusum_cap", "cap of each cumulative sum, robust sigmas"),
    ),
    Detector.SEASONAL: (
        ("seasonal_alpha", "EWMA factor of each hour-of-day / day-of-week bin per visit"),
        ("seasonal_min_visits", "visits an hour bin needs before it is trusted"),
        ("seasonal_min_days", "days of history before the detector speaks"),
        ("seasonal_gain", "speaks only if its residual sigma < gain x robust sigma"),
    ),
    Detector.DRIFT: (
        ("recent_spread", "points of the recent window compared with the reference histogram"),
        ("psi_eff_n", "effective sample size of the PSI chi-square approximation"),
    ),
}
_TYPES: dict[Detector, tuple[AnomalyType, ...]] = {
    Detector.SPIKE: (
        AnomalyType.LATENCY_SPIKE,
        AnomalyType.TOKEN_USAGE_SPIKE,
        AnomalyType.COST_ANOMALY,
        AnomalyType.ERROR_RATE_INCREASE,
        AnomalyType.THROUGHPUT_DROP,
        AnomalyType.LEVEL_SHIFT,
    ),
    Detector.LEVEL_SHIFT: (AnomalyType.LEVEL_SHIFT, AnomalyType.THROUGHPUT_DROP, AnomalyType.LATENCY_SPIKE),
    Detector.VARIANCE_CHANGE: (AnomalyType.VARIANCE_CHANGE,),
    Detector.CUSUM: (AnomalyType.LEVEL_SHIFT, AnomalyType.THROUGHPUT_DROP, AnomalyType.LATENCY_SPIKE),
    Detector.SEASONAL: (AnomalyType.SEASONAL_DEVIATION, AnomalyType.TOKEN_USAGE_SPIKE),
    Detector.DRIFT: (AnomalyType.DRIFT,),
}


def normalised_weights(config: EngineConfig) -> tuple[float, ...]:
    """Ensemble weights summing to 1, in Detector order."""
    total = sum(config.weights)
    return tuple(w / total for w in config.weights)


def catalogue(config: EngineConfig, kind: DetectorKind = DetectorKind.UNSPECIFIED) -> list[DetectorInfo]:
    """Every detector of the ensemble and the ensemble itself, in a stable order."""
    params = config.parameters()

    def parameters(names: Sequence[tuple[str, str]]) -> tuple[Parameter, ...]:
        return tuple(Parameter(name, params[name], text) for name, text in names if name in params)

    weights = normalised_weights(config)
    out = [
        DetectorInfo(
            name=DETECTOR_NAMES[d],
            description=detector_description(d),
            kind=DetectorKind.UNIVARIATE,
            parameters=parameters((*_OWN[d], *_SHARED)),
            weight=weights[d],
            threshold=config.threshold,
            warmup_points=config.warmup_points,
            anomaly_types=_TYPES[d],
        )
        for d in Detector
    ]
    out.append(
        DetectorInfo(
            name=ENSEMBLE,
            description=(
                "weighted Bonferroni over the self-calibrated detector surprises, mapped to [0, 1] "
                "by u / (u + half_surprise), with novelty damping of repeated alarms"
            ),
            kind=DetectorKind.ENSEMBLE,
            parameters=parameters(
                (
                    ("half_surprise", "combined surprise (-log10 p) mapped to score 0.5"),
                    ("novelty_decay", "per-point decay of the remembered peak score"),
                    ("novelty_damping", "fraction removed from scores that repeat a recent alarm"),
                    ("warmup_points", "points before a series scores above 0"),
                    ("threshold", "score at or above which a point is anomalous"),
                )
            ),
            weight=0.0,
            threshold=config.threshold,
            warmup_points=config.warmup_points,
            anomaly_types=tuple(sorted({t for types in _TYPES.values() for t in types})),
        )
    )
    if kind is DetectorKind.UNSPECIFIED:
        return out
    return [d for d in out if d.kind is kind]


def weights_for(config: EngineConfig, names: Sequence[str], field: str = "detectors") -> tuple[float, ...]:
    """Engine weights keeping only the named detectors (all when `names` is empty).

    Raises:
        InvalidArgumentError: reason UNKNOWN_DETECTOR, naming `field[i]`.
    """
    if not names:
        return config.weights
    chosen = set()
    for i, name in enumerate(names):
        if name not in DETECTOR_NAMES:
            raise InvalidArgumentError(
                f"{field}[{i}]",
                f"unknown detector {name!r}; known: {', '.join(DETECTOR_NAMES)}",
                reason="UNKNOWN_DETECTOR",
            )
        chosen.add(DETECTOR_NAMES.index(name))
    weights = tuple(w if d in chosen else 0.0 for d, w in enumerate(config.weights))
    if sum(weights) <= 0:
        raise InvalidArgumentError(field, "the chosen detectors all have weight 0", reason="UNKNOWN_DETECTOR")
    return weights
