"""Tail probabilities in log space (no SciPy): the fixed transforms of the ensemble.

Every function takes and returns float64 arrays of any shape (element-wise);
``NaN`` in gives ``NaN`` out. Log space keeps far tails finite: a z of 40 has a
tail probability far below the smallest float64 but a perfectly usable log.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_LN10 = float(np.log(10.0))
_LN2 = np.log(2.0)
_SQRT2 = float(np.sqrt(2.0))
# Chebyshev fit of erfc (Numerical Recipes ``erfcc``): relative error < 1.2e-7
# everywhere, including the far tail, and its exponent can be kept in log form.
_ERFC_COEFFS = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def _log_erfc_nonneg(x: FloatArray) -> FloatArray:
    """log(erfc(x)) for x >= 0 (``x`` finite or +inf, not NaN)."""
    t = 1.0 / (1.0 + 0.5 * x)
    # Horner from the top coefficient: the first step of ``0 * t + c`` is exactly c.
    poly = np.full_like(x, _ERFC_COEFFS[-1])
    for c in _ERFC_COEFFS[-2::-1]:
        np.multiply(poly, t, out=poly)
        np.add(poly, c, out=poly)
    out = np.log(t)
    out -= x * x
    out += poly
    return out


def normal_logsf(z: npt.ArrayLike) -> FloatArray:
    """Natural log of the standard normal upper tail ``P(Z > z)``.

    Args:
        z: standard scores, any shape, float64.

    Returns:
        ``log P(Z > z)``, same shape; ``NaN`` where ``z`` is ``NaN``.
    """
    z = np.asarray(z, dtype=np.float64)
    x = z / _SQRT2
    ax = np.abs(x)
    nan = np.isnan(ax)
    if nan.any():
        ax[nan] = 0.0
    log_erfc_abs = _log_erfc_nonneg(ax)
    # For z < 0: P(Z > z) = 1 - 0.5 erfc(|x|); only those elements pay for exp/log1p.
    out = log_erfc_abs - _LN2
    neg = x < 0.0
    if neg.any():
        out[neg] = np.log1p(-0.5 * np.exp(log_erfc_abs[neg]))
    if nan.any():
        out[nan] = np.nan
    return np.asarray(out, dtype=np.float64)


def chi2_logsf(x: npt.ArrayLike, df: float) -> FloatArray:
    """Natural log of the chi-square upper tail ``P(X > x)`` with ``df`` degrees of freedom.

    Uses the Wilson-Hilferty cube-root normal approximation (good to a few
    percent in the body, monotone and finite in the tail), which is all a
    fixed score transform needs.

    Args:
        x: statistics, any shape, float64, ``x >= 0``.
        df: degrees of freedom (> 0).

    Returns:
        ``log P(X > x)``, same shape; ``NaN`` where ``x`` is ``NaN``.
    """
    x = np.asarray(x, dtype=np.float64)
    a = 2.0 / (9.0 * df)
    z = (np.cbrt(np.maximum(x, 0.0) / df) - (1.0 - a)) / np.sqrt(a)
    return normal_logsf(z)


def surprise_from_logp(logp: npt.ArrayLike) -> FloatArray:
    """Surprise ``-log10 p`` from a natural-log probability (0 for p = 1, NaN stays NaN)."""
    logp = np.asarray(logp, dtype=np.float64)
    return np.asarray(np.maximum(-logp / _LN10, 0.0), dtype=np.float64)


def two_sided_surprise(z: npt.ArrayLike) -> FloatArray:
    """``-log10`` of the two-sided normal tail ``P(|Z| > |z|)``; NaN z gives 0."""
    z = np.asarray(z, dtype=np.float64)
    z = np.where(np.isnan(z), 0.0, np.abs(z))
    return surprise_from_logp(normal_logsf(z) + _LN2)
