"""Gradient-variance metrics of alpha-SVRG over a stack of per-probe gradient estimates."""

from __future__ import annotations

import torch


def variance_metrics(estimates: torch.Tensor) -> dict[str, float]:
    """``estimates``: n_probes x D (each row one flattened gradient estimate, n >= 2). Returns

    * ``total_variance``: sum over coordinates of the (unbiased) variance across probes, Σ_k Var(g_k);
    * ``directional_variance``: mean over pairs i < j of (1 - cos(g_i, g_j)) / 2;
    * ``top_eigenvalue``: the largest eigenvalue of the gradient covariance (through the n x n Gram matrix).
    """
    if estimates.dim() != 2 or len(estimates) < 2:
        raise ValueError(f"estimates must be n x D with n >= 2, got shape {list(estimates.shape)}")
    e = estimates.to(torch.float64)
    n = len(e)
    centred = e - e.mean(0, keepdim=True)
    total = float(centred.pow(2).sum() / (n - 1))
    unit = e / e.norm(dim=1, keepdim=True).clamp_min(1e-300)
    cos = unit @ unit.T
    iu = torch.triu_indices(n, n, offset=1)
    directional = float(((1 - cos[iu[0], iu[1]]) / 2).mean())
    top = float(torch.linalg.eigvalsh(centred @ centred.T / (n - 1))[-1])
    return {"total_variance": total, "directional_variance": directional, "top_eigenvalue": top}
