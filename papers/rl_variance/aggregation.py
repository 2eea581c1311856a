"""Loss aggregation for group rollouts (GRPO, DAPO, Dr.GRPO, Delta-L) and the GVPO loss, as pure functions.

Every aggregator has one signature, ``aggregate(token_losses, mask, group_ids, lengths, cfg)``, and reduces over
the last two dims (sequences x tokens), so leading dims batch independent estimates. The normaliser is named
explicitly, since the names differ between papers and libraries:

    GRPO    (1/B) sum_i (1/L_i) sum_t l_it          sequence mean of token means (verl "seq-mean-token-mean")
    DAPO    (1/sum_i L_i) sum_i sum_t l_it          token mean over the batch (verl "token-mean")
    Dr.GRPO (1/(B L_max)) sum_i sum_t l_it          L_max a configured constant, NOT the padded width (verl#3741)
    Delta-L (1/(B L_max)) sum_i w_i sum_t l_it      w_i = (L_i/Lbar)^-alpha / mean_j (L_j/Lbar)^-alpha over the
                                                   whole batch (zerolllin/Delta-L-Normalization@89da5b9)

The official Delta-L code multiplies the advantages by w_i and then uses ``masked_mean_allavg`` (sum over tokens /
(B * L_pad)); since l_it is linear in A_i and w_i > 0 (also through PPO clipping), weighting the token losses
is the same. Our constant L_max replaces L_pad (equal when responses are padded to the maximum length).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

AGGREGATORS = ("grpo", "dapo", "drgrpo", "deltal")


@dataclass(frozen=True)
class AggConfig:
    """``name`` in AGGREGATORS; ``max_len`` the constant normaliser of Dr.GRPO and Delta-L; ``alpha`` Delta-L's
    exponent (1 on CountDown, 0.75 on Math in the paper)."""

    name: str
    max_len: int
    alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in AGGREGATORS:
            raise ValueError(f"name must be one of {AGGREGATORS}, got {self.name!r}")
        if self.max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {self.max_len}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")


def group_advantages(rewards: torch.Tensor, group_ids: torch.Tensor, std_normalize: bool,
                     eps: float = 1e-6) -> torch.Tensor:
    """A_i = R_i - mean_group(R), divided by the group's (unbiased) std + eps when ``std_normalize`` (verl's
    ``norm_adv_by_std_in_grpo``, on by default there, hence ON in Delta-L's base advantage unless switched off).
    Works over leading dims: rewards (..., B), group_ids (B,)."""
    groups = torch.unique(group_ids)
    onehot = (group_ids[:, None] == groups[None, :]).to(rewards.dtype)  # (B, n_groups)
    size = onehot.sum(0)
    mean = (rewards @ onehot) / size
    centred = rewards - mean @ onehot.T
    if not std_normalize:
        return centred
    std = ((centred**2) @ onehot / (size - 1)).sqrt()
    return centred / (std @ onehot.T + eps)


def deltal_weights(lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """Delta-L's batch-level weights: (L_i/Lbar)^-alpha / mean_j (L_j/Lbar)^-alpha, mean 1 over the last dim.
    alpha=1 gives weights proportional to 1/L_i (the minimum-variance choice when Var(g_i) ~ V L_i)."""
    rel = lengths / lengths.mean(-1, keepdim=True)
    raw = rel ** (-alpha)
    return raw / raw.mean(-1, keepdim=True)


def aggregate(token_losses: torch.Tensor, mask: torch.Tensor, group_ids: torch.Tensor, lengths: torch.Tensor,
              cfg: AggConfig) -> torch.Tensor:
    """The batch loss from per-token losses (..., B, T) with mask (..., B, T) and lengths (..., B)."""
    masked = token_losses * mask
    per_seq = masked.sum(-1)  # (..., B)
    B = mask.shape[-2]
    if cfg.name == "grpo":
        return (per_seq / lengths).mean(-1)
    if cfg.name == "dapo":
        return per_seq.sum(-1) / mask.sum((-1, -2))
    if cfg.name == "drgrpo":
        return per_seq.sum(-1) / (B * cfg.max_len)
    return (deltal_weights(lengths, cfg.alpha) * per_seq).sum(-1) / (B * cfg.max_len)


def sequence_coefficients(mask: torch.Tensor, group_ids: torch.Tensor, lengths: torch.Tensor,
                          cfg: AggConfig) -> torch.Tensor:
    """d loss / d l_it for every token, by autograd of :func:`aggregate` (the weights are functions of the lengths
    only, so the loss is linear in the token losses); returns (..., B), the weight of each sequence's tokens."""
    x = torch.zeros(mask.shape, dtype=torch.float64, requires_grad=True)
    aggregate(x, mask, group_ids, lengths, cfg).sum().backward()
    return x.grad[..., 0]  # every sequence has at least one token, and the weight is the same along it


def _check_whole_groups(group_ids: torch.Tensor, group_size: int) -> torch.Tensor:
    groups, counts = torch.unique(group_ids, return_counts=True)
    if (counts != group_size).any():
        raise ValueError(f"GVPO needs whole groups of {group_size} responses; got group sizes "
                         f"{dict(zip(groups.tolist(), counts.tolist(), strict=True))} (a split group changes the loss)")
    return groups


def gvpo_loss(logp: torch.Tensor, anchor_logp: torch.Tensor, rewards: torch.Tensor, group_ids: torch.Tensor,
              beta: float, group_size: int, detach_mean: bool = True) -> torch.Tensor:
    """GVPO (official ``GVPO/gvpo_core_algos.py``): mean over groups of
    sum_i 1/2 [(R_theta,i - mean_g R_theta) - (R_i - mean_g R)]^2 / (n - 1),  R_theta = beta (log pi - log anchor).

    ``logp``/``anchor_logp`` are sequence log-probs (..., B); the anchor is pi_ref (``anchor="ref"``, the paper's
    fixed point) or pi_old (the official code). As in the code the group mean of R_theta is detached
    (``detach_mean``), which leaves the gradient unchanged for whole groups; a split group raises. The official code
    sums the per-group terms over the batch; the mean over groups here is a constant factor."""
    groups = _check_whole_groups(group_ids, group_size)
    onehot = (group_ids[:, None] == groups[None, :]).to(logp.dtype)
    r_theta = beta * (logp - anchor_logp)
    mean_theta = (r_theta.detach() if detach_mean else r_theta) @ onehot / group_size
    adv = rewards - (rewards @ onehot / group_size) @ onehot.T
    resid = (r_theta - mean_theta @ onehot.T) - adv
    per_group = 0.5 * (resid**2) @ onehot / (group_size - 1)
    return per_group.mean(-1)


def grpo_kl_loss(logp: torch.Tensor, ref_logp: torch.Tensor, rewards: torch.Tensor, group_ids: torch.Tensor,
                 beta: float) -> torch.Tensor:
    """The GRPO-style contrast of B4 for one-token responses: mean_i [-A_i log pi(y_i) + beta k3_i], with A the
    group-normalised advantage and k3 = exp(log pi_ref - log pi) - (log pi_ref - log pi) - 1 (verl's
    ``low_var_kl``); no importance weights, whatever distribution the responses came from."""
    adv = group_advantages(rewards, group_ids, std_normalize=True)
    d = ref_logp - logp
    return (-adv * logp + beta * (d.exp() - d - 1)).mean(-1)
