"""RAdam's variance rectification (Liu et al., ICLR 2020, eq. 6 and Alg. 2), shared by every optimizer that uses it.

RAdam and AdaBelief (``rectify=True``) both take the official RAdam code's rule: rectify when rho_t >= 5, with
the rectification term r_t below. It lives here because a paper never imports another paper.
"""

from __future__ import annotations

import math

__all__ = ["RHO_THRESHOLD", "rectified_step_size", "rectifier", "rectifier_from_rho", "rho_t"]

# rho_t must reach this for a step to be rectified (official code: ``N_sma >= 5``; the paper says ``> 4``).
RHO_THRESHOLD = 5.0


def rho_t(step: int, beta2: float) -> float:
    """Length of the approximated simple moving average at step ``step`` (1-based), paper eq. (6).

    Written exactly as torch and the official code write it, so that the rectification branch is
    chosen on the same float64 number by every implementation.
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    rho_inf = 2 / (1 - beta2) - 1
    bias_correction2 = 1 - beta2**step
    return rho_inf - 2 * step * (beta2**step) / bias_correction2


def rectifier(step: int, beta2: float) -> float | None:
    """Variance rectification term r_t, or ``None`` when rho_t < 5 and the step is not rectified."""
    return rectifier_from_rho(rho_t(step, beta2), beta2)


def rectifier_from_rho(rho: float, beta2: float) -> float | None:
    """r_t for an already computed ``rho`` = rho_t, or ``None`` below the threshold.

    Split from :func:`rectifier` so a caller can pin rho_t (the threshold test) without copying the formula.
    """
    if rho < RHO_THRESHOLD:
        return None
    rho_inf = 2 / (1 - beta2) - 1
    return math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))


def rectified_step_size(step: int, beta1: float, beta2: float) -> float | None:
    """r_t sqrt(1-b2^t) / (1-b1^t), what multiplies lr on a rectified step, or ``None`` when rho_t < 5.

    Equal to ``rectifier(step, beta2) * sqrt(1 - beta2**step) / (1 - beta1**step)``, but rounded like the official
    RAdam code and adabelief-pytorch (one sqrt over the whole product), so that an optimizer whose parity target
    is that code matches it bit for bit in float64 rather than to a few ulp.
    """
    rho = rho_t(step, beta2)
    if rho < RHO_THRESHOLD:
        return None
    beta2_t = beta2**step
    rho_inf = 2 / (1 - beta2) - 1
    return math.sqrt(
        (1 - beta2_t) * (rho - 4) / (rho_inf - 4) * (rho - 2) / rho * rho_inf / (rho_inf - 2)
    ) / (1 - beta1**step)
