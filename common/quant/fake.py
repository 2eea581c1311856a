"""Fake (simulated) low-bit quantizers: the value a tensor takes after quantize -> dequantize, in its own dtype.

The recipe is the Stable-SPAM repository's ``utils/act_weight_quantization.py`` / ``act_weight_fp4.py``.
Every quantizer works on groups of ``group_size`` consecutive entries of the last
dimension (one token row of an activation, one output row of a weight), so a group never straddles a token;
when the row length is not a multiple of the group size the row's last group is shorter. For rows that are a
multiple of the group size (the paper's models: hidden 512..2048, group 256) this equals the official contiguous
chunks of the flattened tensor.

None of these functions carries a gradient: the straight-through estimator lives in :mod:`common.quant.linear`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

GroupFn = Callable[[torch.Tensor], torch.Tensor]  # (n_groups, group) -> (n_groups, group)


def _check_group(group_size: int) -> None:
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")


def apply_grouped(x: torch.Tensor, group_size: int, fn: GroupFn) -> torch.Tensor:
    """``fn`` on groups of ``group_size`` along the last dim; a shorter tail group takes the row's remainder."""
    _check_group(group_size)
    if x.numel() == 0:
        return x.clone()
    width = x.shape[-1]
    rows = x.reshape(-1, width)
    full = (width // group_size) * group_size
    parts = []
    if full:
        parts.append(fn(rows[:, :full].reshape(-1, group_size)).reshape(rows.shape[0], full))
    if full < width:
        parts.append(fn(rows[:, full:]))
    return torch.cat(parts, dim=1).reshape(x.shape) if len(parts) > 1 else parts[0].reshape(x.shape)


def _round(x: torch.Tensor, stochastic: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Round to nearest, or stochastically: add U(-0.5, 0.5) first (the official ``stochastic_round``)."""
    if stochastic:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) - 0.5
        x = x + noise
    return torch.round(x)


def quantize_weight_int(w: torch.Tensor, bits: int = 4, group_size: int = 256) -> torch.Tensor:
    """Asymmetric per-group round-to-nearest (the official ``_quantize_tensor``): 2^bits levels between the
    group's min and max: scale = max(max - min, 1e-5) / (2^bits - 1), zero = clamp(round(-min/scale)),
    q = clamp(round(w/scale) + zero, 0, 2^bits - 1), w_q = (q - zero) * scale."""
    top = 2**bits - 1

    def fn(g: torch.Tensor) -> torch.Tensor:
        lo, hi = g.amin(dim=1, keepdim=True), g.amax(dim=1, keepdim=True)
        scale = (hi - lo).clamp(min=1e-5) / top
        zero = torch.round(-lo / scale).clamp(0, top)
        q = (torch.round(g / scale) + zero).clamp(0, top)
        return (q - zero) * scale

    return apply_grouped(w, group_size, fn)


def _keep_outliers(g: torch.Tensor, topk: int, quantize: GroupFn) -> torch.Tensor:
    """Quantize a group with its ``topk`` largest |x| excluded from the scale and kept exactly.

    The k-th largest |x| is found by k rounds of max-and-mask (cheaper on CPU than ``topk`` plus a scatter); entries
    tied with it are all kept, which differs from ``topk`` only on exact ties.
    """
    if topk <= 0:
        return quantize(g)
    mag = g.abs()
    work = mag
    kth = mag.amax(dim=1, keepdim=True)
    for _ in range(min(topk, g.shape[1]) - 1):
        work = torch.where(work >= kth, -1.0, work)
        kth = work.amax(dim=1, keepdim=True)
    mask = mag >= kth
    rest = g.masked_fill(mask, 0.0)
    return torch.where(mask, g, quantize(rest))


def quantize_activation_int(x: torch.Tensor, bits: int = 4, group_size: int = 256, topk: int = 2,
                            stochastic: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Symmetric per-group absmax (the official ``A8Linear``): scale = absmax / (2^(bits-1) - 1) over the group
    without its ``topk`` outliers, q = clamp(round(x/scale), -2^(bits-1), 2^(bits-1) - 1); outliers stay exact."""
    qmax = 2 ** (bits - 1) - 1

    def quantize(g: torch.Tensor) -> torch.Tensor:
        scale = g.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / qmax
        return _round(g / scale, stochastic, generator).clamp(-qmax - 1, qmax) * scale

    return apply_grouped(x, group_size, lambda g: _keep_outliers(g, topk, quantize))


def fp_levels(exp_bits: int = 1, man_bits: int = 2, bias: int = 1, dtype: torch.dtype = torch.float32
              ) -> torch.Tensor:
    """The non-negative values of a tiny float format (no inf/nan codes), sorted. E1M2 with bias 1:
    subnormals 0, .25, .5, .75 and normals 1, 1.25, 1.5, 1.75 (a uniform grid: INT4 scaled by 1/4)."""
    vals = set()
    for e in range(2**exp_bits):
        for m in range(2**man_bits):
            frac = m / 2**man_bits
            vals.add((frac if e == 0 else 1 + frac) * 2.0 ** ((1 if e == 0 else e) - bias))
    return torch.tensor(sorted(vals), dtype=dtype)


def quantize_fp(x: torch.Tensor, group_size: int = 256, topk: int = 2, exp_bits: int = 1, man_bits: int = 2,
                bias: int = 1) -> torch.Tensor:
    """Fake FP4 (default E1M2): per-group absmax scaled onto the format's largest value, round to the nearest
    representable value (sign kept), ``topk`` outliers kept exactly (``topk=0`` quantizes every entry)."""
    pos = fp_levels(exp_bits, man_bits, bias, dtype=x.dtype).to(x.device)
    levels = torch.cat([-pos.flip(0), pos])
    top = pos[-1]

    def quantize(g: torch.Tensor) -> torch.Tensor:
        scale = g.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / top
        y = (g / scale).clamp(-top, top)
        nearest = (y.unsqueeze(-1) - levels).abs().argmin(dim=-1)
        return levels[nearest] * scale

    return apply_grouped(x, group_size, lambda g: _keep_outliers(g, topk, quantize))
