"""A tiny GPT in the shape of nanoGPT's ``model.py`` (Karpathy), small enough to hold in your head.

Token + learned position embeddings -> n_layer Blocks (causal self-attention, GELU MLP 4x) -> LayerNorm
-> linear head tied to the token embedding. ``norm_position`` switches between pre-LN (GPT-2,
``x + f(LN(x))``, final LN) and post-LN (the original Transformer, ``LN(x + f(x))``, no final LN): the
placement the warmup papers (RAdam) are about.

Later switches (RMSNorm, SwiGLU, RoPE) slot in at the three factories ``_norm``, ``_mlp`` and
``GPT._positions``: add a config field, branch there, leave the Blocks alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

NormPosition = Literal["pre", "post"]


@dataclass
class GPTConfig:
    """Architecture hyperparameters; invalid values raise ValueError at construction."""

    vocab_size: int
    block_size: int
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    dropout: float = 0.0
    bias: bool = True
    norm_position: NormPosition = "pre"
    tie_weights: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_head != 0:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.norm_position not in ("pre", "post"):
            raise ValueError(f"norm_position must be 'pre' or 'post', got {self.norm_position!r}")


def _norm(config: GPTConfig) -> nn.Module:
    """The normalization layer (LayerNorm; RMSNorm would branch here)."""
    return nn.LayerNorm(config.d_model, bias=config.bias)


class CausalSelfAttention(nn.Module):
    """Multi-head attention with a causal mask, via PyTorch's fused scaled_dot_product_attention."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.c_proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Linear(4d) -> GELU -> Linear(d) (SwiGLU would be a sibling class chosen in ``_mlp``)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.d_model, 4 * config.d_model, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.d_model, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


def _mlp(config: GPTConfig) -> nn.Module:
    return MLP(config)


class Block(nn.Module):
    """One Transformer layer; ``norm_position`` decides whether LN sits inside or after the residual."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.ln_1 = _norm(config)
        self.attn = CausalSelfAttention(config)
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
        self.wpe = nn.Embedding(config.block_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
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
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def _positions(self, T: int, device: torch.device) -> torch.Tensor:
        """Learned absolute position embeddings (RoPE would instead act inside attention)."""
        return self.wpe(torch.arange(T, device=device))

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (nanoGPT's convention)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        x = self.drop(self.wte(idx) + self._positions(T, idx.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))
