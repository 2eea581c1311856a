"""Fake quantization for simulated low-bit training (the Stable-SPAM 4-bit recipe): quantizers and ``QLinear``."""

from common.quant.fake import (
    apply_grouped,
    fp_levels,
    quantize_activation_int,
    quantize_fp,
    quantize_weight_int,
)
from common.quant.linear import QLinear, QuantConfig

__all__ = ["QLinear", "QuantConfig", "apply_grouped", "fp_levels", "quantize_activation_int", "quantize_fp",
           "quantize_weight_int"]
