"""Upper-tail tests for counts: errors against a baseline rate (normal approximations).

Both return a z whose upper normal tail approximates the exact tail (with a
0.5 continuity correction), so ``normal_logsf(z)`` is the log p-value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def poisson_upper_z(
    count: npt.ArrayLike, expected: npt.ArrayLike, *, min_expected: float = 0.5
) -> FloatArray:
    """z of ``P(N >= count)`` for ``N ~ Poisson(expected)``: ``(count - 0.5 - lam) / sqrt(lam)``.

    Args:
        count: ``(n_series,)`` float64 observed counts (NaN = missing).
        expected: ``(n_series,)`` float64 baseline means; floored at ``min_expected``
            so a series that never erred can still flag its first burst without
            dividing by zero.
        min_expected: floor of the expected count (> 0).

    Returns:
        ``(n_series,)`` float64; NaN where count or expected is NaN.
    """
    n = np.asarray(count, dtype=np.float64)
    lam = np.maximum(np.asarray(expected, dtype=np.float64), min_expected)
    return np.asarray((n - 0.5 - lam) / np.sqrt(lam), dtype=np.float64)


def binomial_upper_z(
    errors: npt.ArrayLike, trials: npt.ArrayLike, p0: npt.ArrayLike, *, min_variance: float = 0.25
) -> FloatArray:
    """z of ``P(E >= errors)`` for ``E ~ Binomial(trials, p0)``.

    ``z = (errors - 0.5 - trials p0) / sqrt(max(trials p0 (1 - p0), min_variance))``.

    Args:
        errors: ``(n_series,)`` float64 failed requests.
        trials: ``(n_series,)`` float64 requests (0 gives NaN: no evidence).
        p0: ``(n_series,)`` float64 baseline error probability in [0, 1].
        min_variance: variance floor, so ``p0 = 0`` still yields a finite z.

    Returns:
        ``(n_series,)`` float64.
    """
    e = np.asarray(errors, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    p = np.clip(np.asarray(p0, dtype=np.float64), 0.0, 1.0)
    var = np.maximum(n * p * (1.0 - p), min_variance)
    z = (e - 0.5 - n * p) / np.sqrt(var)
    return np.asarray(np.where(n > 0, z, np.nan), dtype=np.float64)
