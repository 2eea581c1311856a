"""Symmetric eigendecomposition with the guard Kronecker-factored optimizers (SOAP, Shampoo) need.

An EMA of G G^T is symmetric PSD but often rank-deficient, and a NaN gradient makes it non-finite; LAPACK's
``eigh`` then fails ("failed to converge", nikhilvyas/SOAP#14). The official SOAP code adds a tiny jitter to the
diagonal and retries in float64 once; this helper does the same in one place and tells the caller it retried, so
the optimizer can record the event instead of hiding it.
"""

from __future__ import annotations

import torch

from common.errors import DivergedError

__all__ = ["EighError", "eigh_with_fallback"]


class EighError(DivergedError):
    """``eigh`` failed in the working dtype and in float64: the matrix is not finite (a NaN/inf gradient)."""


def eigh_with_fallback(matrix: torch.Tensor, *, jitter: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Eigenvalues (ascending) and eigenvectors of ``matrix + jitter I``, in ``matrix.dtype``.

    On a LAPACK failure the decomposition is retried once in float64 (the official SOAP fallback); the third return
    value says whether that happened. If float64 fails too, raise :class:`EighError` naming the likely cause rather
    than torch's generic convergence message.
    """
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"eigh_with_fallback needs a square matrix, got shape {tuple(matrix.shape)}")
    n = matrix.shape[0]
    try:
        values, vectors = torch.linalg.eigh(matrix + jitter * torch.eye(n, dtype=matrix.dtype, device=matrix.device))
        retried = False
    except RuntimeError:
        work = matrix.to(torch.float64)
        try:
            values, vectors = torch.linalg.eigh(work + jitter * torch.eye(n, dtype=torch.float64, device=matrix.device))
        except RuntimeError as err:
            finite = bool(torch.isfinite(matrix).all())
            cause = "" if finite else " The matrix has NaN/inf entries: check the gradients (loss scale, clipping)."
            raise EighError(f"eigh failed in {matrix.dtype} and in float64 on a {n}x{n} matrix.{cause}") from err
        retried = True
    return values.to(matrix.dtype), vectors.to(matrix.dtype), retried
