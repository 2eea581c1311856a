"""The toy token-level MDP of B3: every response is enumerable, so the policy gradient is exact.

Vocabulary {0, 1, EOS}; a response is up to ``max_len`` tokens and ends at the first EOS (which counts as a
token) or is cut at ``max_len``. Its length L is in 1..max_len. The reward is verifiable: 1 if the sum of the
non-EOS tokens mod 3 equals the prompt's target, else 0. The policy is a table of logits indexed by
(prompt, position, previous token) with previous token in {BOS, 0, 1}, i.e. P x max_len x 3 x 3 parameters.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

EOS = 2
BOS = 2  # the "previous token" slot at position 0


@dataclass(frozen=True)
class TokenMDP:
    """All P x S responses with their contexts, tokens, masks, lengths, rewards and score-function rows.

    ``ctx[p, s, t]`` is the flat index of the logit row used at token t; ``tok[p, s, t]`` the token; ``mask``
    marks real tokens. ``score[p, s]`` is d log pi(y | x) / d table as a dense row of length n_params (computed
    per policy by :meth:`scores`).
    """

    prompts: int
    max_len: int
    targets: np.ndarray  # (P,)
    ctx: torch.Tensor  # (P, S, T) long
    tok: torch.Tensor  # (P, S, T) long
    mask: torch.Tensor  # (P, S, T) float64
    lengths: torch.Tensor  # (S,) float64 (the same responses for every prompt)
    rewards: torch.Tensor  # (P, S) float64

    @classmethod
    def make(cls, prompts: int = 4, max_len: int = 8, seed: int = 0) -> TokenMDP:
        seqs: list[tuple[int, ...]] = []
        for k in range(max_len):  # k content tokens then EOS
            seqs += [(*c, EOS) for c in itertools.product((0, 1), repeat=k)]
        seqs += list(itertools.product((0, 1), repeat=max_len))  # truncated, no EOS
        S, T = len(seqs), max_len
        tok = np.zeros((S, T), dtype=np.int64)
        prev = np.zeros((S, T), dtype=np.int64)
        mask = np.zeros((S, T))
        sums = np.zeros(S, dtype=np.int64)
        for s, y in enumerate(seqs):
            tok[s, :len(y)] = y
            mask[s, :len(y)] = 1
            prev[s, 0] = BOS
            prev[s, 1:len(y)] = y[:-1]
            sums[s] = sum(t for t in y if t != EOS)
        targets = np.random.default_rng(seed).integers(0, 3, prompts)
        p_idx = np.arange(prompts)[:, None, None]
        pos = np.arange(T)[None, None, :]
        ctx = (p_idx * T + pos) * 3 + prev[None]  # flat (prompt, position, prev) row index
        rewards = (sums[None, :] % 3 == targets[:, None]).astype(np.float64)
        return cls(prompts, max_len, targets, torch.from_numpy(ctx), torch.from_numpy(np.broadcast_to(
            tok, (prompts, S, T)).copy()), torch.from_numpy(np.broadcast_to(mask, (prompts, S, T)).copy()),
            torch.from_numpy(mask.sum(1)), torch.from_numpy(rewards))

    @property
    def n_rows(self) -> int:
        return self.prompts * self.max_len * 3

    @property
    def n_params(self) -> int:
        return self.n_rows * 3

    @property
    def n_responses(self) -> int:
        return self.tok.shape[1]

    def seq_logprobs(self, table: torch.Tensor) -> torch.Tensor:
        """log pi(y | x) for every (prompt, response): (P, S); differentiable in ``table`` (n_rows x 3)."""
        logp = torch.log_softmax(table, -1)
        per_tok = logp[self.ctx, self.tok] * self.mask
        return per_tok.sum(-1)

    def expected_reward(self, table: torch.Tensor) -> torch.Tensor:
        """J = mean over prompts of E_{y ~ pi(.|x)} R(x, y), exact."""
        return (self.seq_logprobs(table).exp() * self.rewards).sum(-1).mean()

    def scores(self, table: torch.Tensor) -> torch.Tensor:
        """d log pi(y|x) / d table for every (prompt, response), flattened: (P, S, n_params), float64.

        Per token: onehot(token) - softmax(row) added to the token's context row (the closed form of the
        log-softmax gradient)."""
        probs = torch.softmax(table.detach().to(torch.float64), -1)  # (rows, 3)
        P, S, T = self.tok.shape
        out = torch.zeros(P, S, self.n_rows, 3, dtype=torch.float64)
        onehot = torch.nn.functional.one_hot(self.tok, 3).to(torch.float64)
        contrib = (onehot - probs[self.ctx]) * self.mask[..., None]  # (P, S, T, 3)
        idx = self.ctx[..., None].expand(P, S, T, 3)
        out.scatter_add_(2, idx, contrib)
        return out.reshape(P, S, self.n_params)

    def exact_gradient(self, table: torch.Tensor) -> torch.Tensor:
        """grad J by enumeration: mean_x sum_y pi(y|x) R(x,y) score(x,y), flattened (n_params,)."""
        pi = self.seq_logprobs(table.detach().to(torch.float64)).exp()
        return torch.einsum("ps,psd->d", pi * self.rewards, self.scores(table)) / self.prompts
