"""Per-(service, model) feature vectors of the LLM metrics, and the calibration of the detectors
that score them (pure NumPy; no PyOD here).

Shapes: ``n`` points, ``n_cells`` buckets, ``F = len(FEATURES)`` features, ``d`` detectors.
Every array is float64 unless stated; ``NaN`` in a feature means "not observed in that bucket"
(e.g. no TTFT sent), never a value. Functions never mutate their inputs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sentinel.detection.kernels.robust import MAD_TO_SIGMA

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The metrics read from the stream (ingestion's derived series), in accumulator column order.
INPUTS: tuple[str, ...] = (
    "llm.requests",
    "llm.errors",
    "llm.latency_ms",
    "llm.ttft_ms",
    "llm.tokens.total",
    "llm.cost_usd",
)
REQUESTS, ERRORS, LATENCY, TTFT, TOKENS, COST = range(len(INPUTS))
# The features of one bucket, in column order.
FEATURES: tuple[str, ...] = (
    "request_rate",
    "latency_ms",
    "ttft_ms",
    "tokens_per_request",
    "cost_per_request",
    "error_rate",
)
N_FEATURES = len(FEATURES)
ERROR_RATE = FEATURES.index("error_rate")
# 1.4826 * MAD estimates sigma under normality.


def bucket_sums(
    cell: IntArray, column: IntArray, value: FloatArray, n_cells: int
) -> tuple[FloatArray, FloatArray]:
    """Sum and count of the points of each (bucket, input) cell.

    Args:
        cell: Shape (n,), int64 in [0, n_cells): the bucket of each point.
        column: Shape (n,), int64 in [0, len(INPUTS)): the input metric of each point.
        value: Shape (n,), finite float64.
        n_cells: number of buckets.

    Returns:
        ``(sums, counts)``, each shaped (n_cells, len(INPUTS)).
    """
    sums = np.zeros((n_cells, len(INPUTS)), dtype=np.float64)
    counts = np.zeros((n_cells, len(INPUTS)), dtype=np.float64)
    np.add.at(sums, (cell, column), value)
    np.add.at(counts, (cell, column), 1.0)
    return sums, counts


def raw_features(sums: FloatArray, counts: FloatArray, width_s: float) -> FloatArray:
    """The features of buckets in their own units.

    request_rate = requests / width (requests counted by ``llm.requests`` points, else by the
    latency points); latency, TTFT = mean per call; tokens and cost = mean per call;
    error_rate = errors / requests. A feature with no point in its bucket is NaN.

    Args:
        sums, counts: Shape (n_cells, len(INPUTS)), as from `bucket_sums`.
        width_s: bucket width in seconds (> 0).

    Returns:
        Shape (n_cells, N_FEATURES).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / counts, np.nan)
        requests = np.where(counts[:, REQUESTS] > 0, sums[:, REQUESTS], counts[:, LATENCY])
        errors_n = np.where(counts[:, REQUESTS] > 0, sums[:, REQUESTS], counts[:, ERRORS])
        error_rate = np.where((counts[:, ERRORS] > 0) & (errors_n > 0), sums[:, ERRORS] / errors_n, np.nan)
        rate = np.where(requests > 0, requests / width_s, np.nan)
    out = np.column_stack([rate, mean[:, LATENCY], mean[:, TTFT], mean[:, TOKENS], mean[:, COST], error_rate])
    return np.asarray(out, dtype=np.float64)


def model_space(raw: FloatArray) -> FloatArray:
    """Variance-stabilised features: log1p of the positive quantities, arcsin(sqrt) of the error
    rate, so that one robust scale per feature fits loads of any size.

    Args:
        raw: Shape (..., N_FEATURES), as from `raw_features` (NaN kept).
    """
    out = np.log1p(np.maximum(raw, 0.0))
    out[..., ERROR_RATE] = np.arcsin(np.sqrt(np.clip(raw[..., ERROR_RATE], 0.0, 1.0)))
    return out


def robust_center_scale(history: FloatArray, floor: float) -> tuple[FloatArray, FloatArray]:
    """Median and robust sigma of each series' history, per feature, NaN ignored.

    Args:
        history: Shape (n_series, window, F); NaN marks a missing value or an empty slot.
        floor: lower bound of the scale (MAD is 0 on flat features).

    Returns:
        ``(center, scale)``, each shaped (n_series, F); center is NaN (scale = floor) where a
        series has no value of that feature.
    """
    if history.shape[1] == 0:
        shape = (history.shape[0], history.shape[2])
        return np.full(shape, np.nan), np.full(shape, float(floor))
    empty = np.all(np.isnan(history), axis=1)
    filled = np.where(empty[:, None, :], 0.0, history)
    center = np.nanmedian(filled, axis=1)
    mad = np.nanmedian(np.abs(filled - center[:, None, :]), axis=1)
    center = np.where(empty, np.nan, center)
    scale = np.maximum(MAD_TO_SIGMA * np.where(empty, 0.0, mad), floor)
    return center, scale


def sampling_floor(scale: FloatArray, calls: FloatArray) -> FloatArray:
    """Raise the error-rate scale to its binomial sampling sd: arcsin(sqrt(p_hat)) of n calls has
    sd ~ 1 / (2 sqrt(n)) whatever p is. (A low error rate is mostly 0 per bucket, so its MAD is 0
    and a single failed call would otherwise look like many sigmas.)

    Args:
        scale: Shape (n, F), as from `robust_center_scale`.
        calls: Shape (n,), calls in each bucket (>= 1).
    """
    out = scale.copy()
    out[:, ERROR_RATE] = np.maximum(out[:, ERROR_RATE], 0.5 / np.sqrt(np.maximum(calls, 1.0)))
    return out


def standardise(x: FloatArray, center: FloatArray, scale: FloatArray, clip: float) -> FloatArray:
    """(x - center) / scale, clipped to [-clip, clip]; NaN (unobserved) becomes 0 (= typical).

    Args:
        x, center, scale: Shape (n, F) each (or broadcastable).
    """
    z = (x - center) / scale
    return np.clip(np.where(np.isnan(z), 0.0, z), -clip, clip)


def tail_pvalues(train: FloatArray, scores: FloatArray, tail: int) -> FloatArray:
    """Upper-tail p-values of `scores` against a detector's training scores.

    Below the ``tail``-th largest training score ``u``: the empirical survival function
    ``(1 + #{train >= s}) / (n + 1)``. From ``u`` up: an exponential tail fitted to the top
    ``tail`` scores, ``tail / (n + 1) * exp(-(s - u) / beta)`` with ``beta`` their mean excess,
    so a score beyond every training score still gets a finite, ordered p-value.

    Args:
        train: Shape (n,), sorted ascending, finite, n >= 1.
        scores: Shape (m,).
        tail: 1 <= tail <= n.

    Returns:
        Shape (m,), in (0, 1].
    """
    n = len(train)
    k = int(min(max(tail, 1), n))
    u = float(train[n - k])
    spread = float(train[-1] - train[0])
    beta = max(float(np.mean(train[n - k :] - u)), 1e-6 * spread, 1e-12)
    ge = n - np.searchsorted(train, scores, side="left")
    ecdf = (1.0 + ge) / (n + 1.0)
    tail_p = k / (n + 1.0) * np.exp(-np.maximum(scores - u, 0.0) / beta)
    p = np.where(scores >= u, np.minimum(tail_p, ecdf), ecdf)
    return np.asarray(np.clip(p, 1e-300, 1.0), dtype=np.float64)


def cauchy_combine(pvalues: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Cauchy combination test (ACAT) of dependent p-values, and each one's share of it.

    ``T = sum_i w_i tan((1/2 - p_i) pi)`` with weights summing to 1; ``p = 1/2 - arctan(T) / pi``,
    valid under arbitrary dependence. For tiny p the tangent is replaced by ``1 / (p pi)`` and the
    combined p by ``1 / (T pi)``, their asymptotes, so nothing overflows.

    Args:
        pvalues: Shape (m, d), in (0, 1].
        weights: Shape (d,), >= 0, not all 0 (normalised here).

    Returns:
        ``(p, share)``: combined p shaped (m,), and each detector's share of T shaped (m, d)
        (``w_i t_i / T``; sums to 1 per row).
    """
    w = weights / np.sum(weights)
    p = np.clip(pvalues, 1e-300, 1.0)
    t = np.where(p < 1e-15, 1.0 / (p * np.pi), np.tan((0.5 - p) * np.pi))
    parts = w * t
    total = parts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        combined = np.where(total > 1e15, 1.0 / (total * np.pi), 0.5 - np.arctan(total) / np.pi)
        share = np.where(total[:, None] != 0, parts / total[:, None], w)
    return np.clip(combined, 1e-300, 1.0), share


def surprise_score(p: FloatArray, half: float) -> FloatArray:
    """Map p-values to [0, 1): ``u / (u + half)`` with ``u = -log10 p`` (p = 10^-half -> 0.5)."""
    u = -np.log10(np.clip(p, 1e-300, 1.0))
    return np.asarray(u / (u + half), dtype=np.float64)
