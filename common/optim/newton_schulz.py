"""Muon's quintic Newton-Schulz iteration (NS5), the orthogonalisation step shared by MARS-Shampoo and Muon.

It approximates the orthogonal polar factor U V^T of a matrix M = U S V^T without an SVD. It lives here because
MARS-Shampoo (AGI-Arena/MARS ``MARS/optimizers/mars.py::NewtonSchulz``) and any Muon baseline use the same
function, and a paper never imports another paper.
"""

from __future__ import annotations

import torch

__all__ = ["NS5_COEFFICIENTS", "newton_schulz5"]

# Keller Jordan's quintic coefficients (a, b, c), tuned for speed of convergence rather than exactness: the
# singular values of the output land in roughly [0.7, 1.2], not at 1.
NS5_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz5(
    m: torch.Tensor, *, steps: int = 5, eps: float = 1e-7, dtype: torch.dtype = torch.bfloat16
) -> torch.Tensor:
    """NS5 of the 2-D ``m``, returned in ``m.dtype``; written as the MARS official code writes it.

    ``m`` is cast to ``dtype`` (bf16 in the official code) and divided by (||m||_F + eps); a tall matrix is
    transposed so the Gram matrix X X^T is the small one; then ``steps`` times X <- a X + b (X X^T) X +
    c (X X^T)^2 X. Every operation runs in ``dtype``, so bf16 output carries bf16 rounding (relative ~1e-2).
    """
    if m.ndim != 2:
        raise ValueError(f"newton_schulz5 needs a 2-D tensor, got shape {tuple(m.shape)}")
    a, b, c = NS5_COEFFICIENTS
    x = m.to(dtype) / (m.norm() + eps)
    transposed = m.size(0) > m.size(1)
    if transposed:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        gram_x = gram @ x
        x = a * x + b * gram_x + c * gram @ gram_x
    if transposed:
        x = x.T
    return x.to(m.dtype)
