"""A tiny GPT in the shape of nanoGPT's ``model.py`` (Karpathy), small enough to hold in your head, with LLaMA switches.

Defaults (GPT-2): token + learned position embeddings -> n_layer Blocks (causal self-attention, GELU MLP 4x)
-> LayerNorm -> linear head tied to the token embedding. ``norm_position`` switches between pre-LN (GPT-2,
``x + f(LN(x))``, final LN) and post-LN (the original Transformer, ``LN(x + f(x))``, no final LN): the
placement the warmup papers (RAdam) are about.

LLaMA switches, each a config field branched on in one factory (the Blocks stay the same):

- ``norm="rmsnorm"`` (``_norm``): ``x / sqrt(mean(x^2) + eps) * weight``, no bias, no mean subtraction.
- ``mlp="swiglu"`` (``_mlp``): ``c_proj(silu(c_gate(x)) * c_fc(x))`` with LLaMA's hidden size
  ``multiple_of * ceil(int(8d/3) / multiple_of)`` (:func:`swiglu_hidden`), or ``mlp_hidden`` when given.
- ``positions="rope"``: rotary embeddings on q and k inside attention (Hugging Face LLaMA's rotate-half
  layout, theta 10000); there is no learned position table then.

:func:`llama_config` combines them the way the Stable-SPAM / GaLore LLaMA models do. Other paper switches:
``scale_attn_by_inverse_layer_idx`` (Sophia's and MARS' GPT-2: attention logits also divided by layer + 1)
and ``scale_residual_init`` (GPT-2's 1/sqrt(2 n_layer) init of residual projections; HF LLaMA has none).

Every Linear inside a Block comes from ``_linear``: that is the hook where fake quantization
(``common.quant``, ``config.quant``) swaps in its ``QLinear``. ``lm_head`` and the embeddings are made directly
because the 4-bit recipes keep them in full precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from common.quant.linear import QLinear, QuantConfig

NormPosition = Literal["pre", "post"]
NormKind = Literal["layernorm", "rmsnorm"]
MLPKind = Literal["gelu", "swiglu"]
Positions = Literal["learned", "rope"]


def swiglu_hidden(d_model: int, multiple_of: int = 16) -> int:
    """LLaMA's SwiGLU width: 2/3 of 4d (same parameters as a 4d GELU MLP), rounded up to ``multiple_of``.

    ``multiple_of=16`` gives the Stable-SPAM/GaLore configs (64->176, 512->1376, 768->2048, 1024->2736);
    Meta's LLaMA used 256. Their 1B model (2048 -> 5461) is not rounded: pass ``mlp_hidden`` for it.
    """
    hidden = 8 * d_model // 3
    return multiple_of * -(-hidden // multiple_of)


@dataclass
class GPTConfig:
    """Architecture hyperparameters; invalid values raise ValueError at construction.

    The defaults are nanoGPT's GPT-2; see the module docstring for the LLaMA switches.
    ``mlp_hidden=None`` means 4·d_model for GELU and :func:`swiglu_hidden` for SwiGLU.
    """

    vocab_size: int
    block_size: int
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    dropout: float = 0.0
    bias: bool = True
    norm_position: NormPosition = "pre"
    tie_weights: bool = True
    norm: NormKind = "layernorm"
    norm_eps: float = 1e-5
    mlp: MLPKind = "gelu"
    mlp_hidden: int | None = None
    multiple_of: int = 16
    positions: Positions = "learned"
    rope_theta: float = 10000.0
    scale_attn_by_inverse_layer_idx: bool = False
    scale_residual_init: bool = True
    quant: QuantConfig | None = None  # fake-quantized projections inside the Blocks (common.quant)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model", "multiple_of"):
            _check_positive_int(name, getattr(self, name))
        if self.mlp_hidden is not None:
            _check_positive_int("mlp_hidden", self.mlp_hidden)
        if self.d_model % self.n_head != 0:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        choices = {"norm_position": ("pre", "post"), "norm": ("layernorm", "rmsnorm"), "mlp": ("gelu", "swiglu"),
                   "positions": ("learned", "rope")}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}, got {getattr(self, name)!r}")
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be positive, got {self.norm_eps!r}")
        if not self.rope_theta > 0:
            raise ValueError(f"rope_theta must be positive, got {self.rope_theta!r}")
        if self.positions == "rope" and (self.d_model // self.n_head) % 2:
            raise ValueError(f"rope needs an even head size, got d_model/n_head = {self.d_model // self.n_head}")
        if self.quant is not None and not isinstance(self.quant, QuantConfig):
            raise ValueError(f"quant must be a common.quant.QuantConfig or None, got {type(self.quant).__name__}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def hidden_size(self) -> int:
        """The MLP's inner width."""
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        return 4 * self.d_model if self.mlp == "gelu" else swiglu_hidden(self.d_model, self.multiple_of)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def llama_config(vocab_size: int, block_size: int, n_layer: int, n_head: int, d_model: int, *,
                 mlp_hidden: int | None = None, multiple_of: int = 16, tie_weights: bool = False,
                 norm_eps: float = 1e-6, rope_theta: float = 10000.0, dropout: float = 0.0,
                 quant: QuantConfig | None = None) -> GPTConfig:
    """A LLaMA as the Stable-SPAM / GaLore ``configs/llama_*.json`` build it with HF ``LlamaForCausalLM``.

    Pre-norm RMSNorm (eps 1e-6), SwiGLU, RoPE, no biases, ``lm_head`` untied from the embedding (LlamaConfig's
    ``tie_word_embeddings=False``), N(0, 0.02) init without GPT-2's residual scaling. E.g. LLaMA-60M is
    ``llama_config(32000, 256, 8, 8, 512)`` (intermediate 1376); the 1B model needs ``mlp_hidden=5461``.
    ``quant`` fake-quantizes the seven projections (q/k/v as the fused ``c_attn``, o, gate, up, down), as the
    Stable-SPAM 4-bit runs do; embeddings, norms and ``lm_head`` stay in full precision.
    """
    return GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                     d_model=d_model, dropout=dropout, bias=False, norm_position="pre", tie_weights=tie_weights,
                     norm="rmsnorm", norm_eps=norm_eps, mlp="swiglu", mlp_hidden=mlp_hidden,
                     multiple_of=multiple_of, positions="rope", rope_theta=rope_theta, scale_residual_init=False,
                     quant=quant)


def _linear(in_features: int, out_features: int, bias: bool, config: GPTConfig) -> nn.Linear:
    """Every projection inside a Block: the one place a fake-quantized Linear branches in on ``config.quant``.

    The fused ``c_attn`` (q, k, v stacked) quantizes exactly as three separate projections would: weight groups
    lie inside one output row and all three read the same quantized input.
    """
    if config.quant is not None:
        return QLinear(in_features, out_features, bias=bias, quant=config.quant)
    return nn.Linear(in_features, out_features, bias=bias)


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last dim, in float32 like HF LLaMA, cast back to x's dtype."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def _norm(config: GPTConfig) -> nn.Module:
    """The normalization layer: LayerNorm (bias per ``config.bias``) or RMSNorm (never a bias)."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.d_model, eps=config.norm_eps)
    return nn.LayerNorm(config.d_model, eps=config.norm_eps, bias=config.bias)


def rope_cache(positions: torch.Tensor, head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (len(positions), head_dim): angle ``pos * theta^(-2i/head_dim)`` for pair i, twice."""
    inv_freq = theta ** -(torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim)
    angles = torch.outer(positions.to(torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., T, head_dim) pairwise (i, i + head_dim/2) by the angles in cos/sin (T, head_dim).

    Rotating q at position m and k at position n makes q·k depend on n - m only: the relative-position property.
    """
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos.to(x.dtype) + torch.cat((-x2, x1), dim=-1) * sin.to(x.dtype)


class CausalSelfAttention(nn.Module):
    """Multi-head attention with a causal mask, via PyTorch's fused scaled_dot_product_attention."""

    def __init__(self, config: GPTConfig, layer_idx: int = 0) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = _linear(config.d_model, 3 * config.d_model, config.bias, config)
        self.c_proj = _linear(config.d_model, config.d_model, config.bias, config)
        self.resid_dropout = nn.Dropout(config.dropout)
        # None keeps SDPA's own 1/sqrt(head_dim); Sophia/MARS GPT-2 also divide the logits by layer_idx + 1.
        self.scale: float | None = None
        if config.scale_attn_by_inverse_layer_idx:
            self.scale = 1.0 / math.sqrt(config.head_dim) / (layer_idx + 1)
        self.rope = config.positions == "rope"
        if self.rope:
            cos, sin = rope_cache(torch.arange(config.block_size), config.head_dim, config.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.rope:
            cos, sin = self.rope_cos[:T], self.rope_sin[:T]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True, scale=self.scale
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Linear(4d) -> GELU -> Linear(d)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = _linear(config.d_model, config.hidden_size, config.bias, config)
        self.c_proj = _linear(config.hidden_size, config.d_model, config.bias, config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class SwiGLU(nn.Module):
    """LLaMA's MLP: ``c_proj(silu(c_gate(x)) * c_fc(x))`` (HF names: gate_proj, up_proj, down_proj)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_gate = _linear(config.d_model, config.hidden_size, config.bias, config)
        self.c_fc = _linear(config.d_model, config.hidden_size, config.bias, config)
        self.c_proj = _linear(config.hidden_size, config.d_model, config.bias, config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.silu(self.c_gate(x)) * self.c_fc(x)))


def _mlp(config: GPTConfig) -> nn.Module:
    return SwiGLU(config) if config.mlp == "swiglu" else MLP(config)


class Block(nn.Module):
    """One Transformer layer; ``norm_position`` decides whether LN sits inside or after the residual."""

    def __init__(self, config: GPTConfig, layer_idx: int = 0) -> None:
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.ln_1 = _norm(config)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = _norm(config)
        self.mlp = _mlp(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x))
        return self.ln_2(x + self.mlp(x))


class GPT(nn.Module):
    """Decoder-only language model: ``forward(idx[B, T]) -> logits[B, T, vocab_size]``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        # RoPE acts inside attention, so a rope model has no position table.
        self.wpe = nn.Embedding(config.block_size, config.d_model) if config.positions == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        # Post-LN blocks already end in a LayerNorm; only pre-LN needs the final one.
        self.ln_f = _norm(config) if config.norm_position == "pre" else nn.Identity()
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight
        self._init_weights()

    def _init_weights(self) -> None:
        # nanoGPT / GPT-2: N(0, 0.02) everywhere, zero biases, and the projections that write into the
        # residual stream scaled by 1/sqrt(2 * n_layer) so the stream's variance does not grow with depth.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
        if not self.config.scale_residual_init:
            return
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def _positions(self, T: int, device: torch.device) -> torch.Tensor:
        """Learned absolute position embeddings (only when ``positions == "learned"``)."""
        assert self.wpe is not None
        return self.wpe(torch.arange(T, device=device))

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (nanoGPT's convention)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding and self.wpe is not None else n

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self._positions(T, idx.device)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))
