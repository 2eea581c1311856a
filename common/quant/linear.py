"""``QLinear``: an ``nn.Linear`` whose forward sees fake-quantized weights and inputs (straight-through).

Forward: ``y = x_q @ W_q^T + b``. Backward (straight-through estimator, as the official ``QLinear`` /
``A8Linear``): the rounding is treated as the identity, so ``dL/dW = g^T x_q`` and ``dL/dx = g W_q``; the
gradient is never quantized. Master weights stay in the parameter's dtype (fp32 here unless the model is cast).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.quant.fake import quantize_activation_int, quantize_fp, quantize_weight_int

MODES = ("int4", "fp4")


@dataclass(frozen=True)
class QuantConfig:
    """The 4-bit recipe. ``mode``: ``int4`` (weights asymmetric RTN, activations symmetric absmax) or ``fp4``
    (E1M2 for both). ``group_size=None`` means min(in_features, 256) per layer. Activation settings left at None
    take the weight settings, as the official code does (its ``QLinear`` overwrites ``A8Linear``'s attributes, so
    ``--act_group_size`` and ``--act_stochastic`` never act); set them to deviate on purpose."""

    mode: str = "int4"
    bits: int = 4
    group_size: int | None = None
    topk: int = 2
    stochastic: bool = False
    act_bits: int | None = None
    act_group_size: int | None = None
    act_topk: int | None = None
    act_stochastic: bool | None = None
    weights: bool = True
    activations: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("bits", "group_size", "act_bits", "act_group_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (2 if "bits" in name else 1)):
                raise ValueError(f"{name} must be a positive integer (bits >= 2), got {v!r}")
        for name in ("topk", "act_topk"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.mode == "fp4" and (self.bits != 4 or self.act_bits not in (None, 4)):
            raise ValueError("mode fp4 is E1M2 (4 bits); bits and act_bits must be 4")

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> QuantConfig:
        """From a preset's ``model.quant`` section; an unknown key is one clear error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"unknown quant setting(s) {unknown}; valid: {sorted(known)}")
        return cls(**dict(spec))


class QLinear(nn.Linear):
    """A Linear projection trained through fake quantization (weights every forward, inputs every forward)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, quant: QuantConfig,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.quant = quant
        q = quant
        self.w_group = q.group_size or min(in_features, 256)
        self.a_group = q.act_group_size or self.w_group
        self.a_bits = q.act_bits or q.bits
        self.a_topk = q.topk if q.act_topk is None else q.act_topk
        self.a_stochastic = q.stochastic if q.act_stochastic is None else q.act_stochastic

    def quantized_weight(self) -> torch.Tensor:
        """W_q (no gradient)."""
        w = self.weight.detach()
        if self.quant.mode == "fp4":
            return quantize_fp(w, self.w_group, topk=self.quant.topk)
        return quantize_weight_int(w, self.quant.bits, self.w_group)

    def quantized_input(self, x: torch.Tensor) -> torch.Tensor:
        """x_q (no gradient)."""
        x = x.detach()
        if self.quant.mode == "fp4":
            return quantize_fp(x, self.a_group, topk=self.a_topk)
        return quantize_activation_int(x, self.a_bits, self.a_group, self.a_topk, self.a_stochastic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if self.quant.weights:
            w = self.quantized_weight() + (w - w.detach())  # STE: value exactly W_q, gradient to W
        if self.quant.activations:
            x = self.quantized_input(x) + (x - x.detach())  # STE: value exactly x_q, gradient to x
        return F.linear(x, w, self.bias)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, mode={self.quant.mode}, w_group={self.w_group}, a_group={self.a_group}, "
                f"a_topk={self.a_topk}")
