"""The contextual bandit of B4: P prompts x K responses, uniform rewards, a random reference policy."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Bandit:
    """Rewards R[x, y] ~ U(0, 1) and reference logits ~ N(0, 1), seeded; everything float64."""

    rewards: torch.Tensor  # (P, K)
    ref_logits: torch.Tensor  # (P, K)

    @classmethod
    def make(cls, prompts: int, responses: int, seed: int) -> Bandit:
        g = torch.Generator().manual_seed(seed)
        return cls(torch.rand(prompts, responses, generator=g, dtype=torch.float64),
                   torch.randn(prompts, responses, generator=g, dtype=torch.float64))

    def optimal_logits(self, beta: float) -> torch.Tensor:
        """log pi* = log pi_ref + R / beta - log Z: the KL-regularised optimum (normalised log-probabilities)."""
        return torch.log_softmax(torch.log_softmax(self.ref_logits, -1) + self.rewards / beta, -1)


def kl_rows(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row from log-probabilities."""
    return (logp.exp() * (logp - logq)).sum(-1)
