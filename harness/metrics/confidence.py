"""Repeats of a level: their mean, a 95% confidence interval (Student t), the coefficient
of variation, and whether two means differ by more than their noise (Welch's t).

Student's t distribution is computed here (the regularised incomplete beta function by
its continued fraction), so the harness needs no SciPy for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

CONFIDENCE = 0.95


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (0.5 < p < 1), by bisection."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2.0


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """mean, sd, the half-width of the 95% confidence interval of the mean (None below 2
    values), its coefficient of variation (sd / mean) and the number of values `k`."""
    k = len(values)
    if not k:
        return {"mean": None, "sd": None, "ci95": None, "cv": None, "k": 0}
    mean = sum(values) / k
    if k < 2:
        return {"mean": mean, "sd": None, "ci95": None, "cv": None, "k": 1}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2.0, k - 1) * sd / math.sqrt(k)
    return {"mean": mean, "sd": sd, "ci95": half, "cv": sd / mean if mean else None, "k": k}


def welch(
    mean_a: float, sd_a: float, k_a: int, mean_b: float, sd_b: float, k_b: int
) -> dict[str, Any]:
    """The difference b - a of two means with its 95% confidence interval (Welch's t, for
    unequal variances); `beyond_noise`: the interval excludes 0."""
    va, vb = sd_a**2 / k_a, sd_b**2 / k_b
    se = math.sqrt(va + vb)
    diff = mean_b - mean_a
    if se == 0.0:
        return {"difference": diff, "ci95": 0.0, "df": None, "beyond_noise": diff != 0.0}
    df = (va + vb) ** 2 / (va**2 / (k_a - 1) + vb**2 / (k_b - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2.0, df) * se
    return {"difference": diff, "ci95": half, "df": df, "beyond_noise": abs(diff) > half}
