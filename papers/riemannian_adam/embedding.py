"""Poincaré embeddings of a hierarchy (Nickel & Kiela 2017, as Bécigneul & Ganea 2019 §5 train them): the negative
sampler, the loss, and the reconstruction metrics (mean rank and MAP).

For a positive pair (u child, v ancestor) of the transitive closure, with N_v a set of K negatives,

    loss(u, v) = d(u, v) + log sum_{w in {u} + N_v} exp(-d(w, v)),

averaged over the batch (NK Eq. 6; RAO Eq. 14): a softmax cross-entropy with logits -d and the positive first.
The negatives corrupt the child: they are drawn from the nodes that are not descendants of v and not v itself. For a
root that set is empty, and they are drawn from every node but v (as the authors' ``hyperbolic_cones`` code does);
a sampler that only rejects would spin forever there.

Reconstruction (C_v = descendants of v; every w != v ranked by d(w, v), nearest first):

* rank(u, v) = 1 + #{w not in C_v + {v} : d(w, v) < d(u, v)}; mean rank = mean over closure edges;
* AP_v = mean over u in C_v of (#{u' in C_v : d(u', v) <= d(u, v)}) / (#{w != v : d(w, v) <= d(u, v)});
  MAP = mean over the v that have descendants. (Ties count against the ranked node; they do not occur in
  float64 training.)
* ``orientation="child"`` is Nickel & Kiela's convention: the query is the child and the positives are its ancestors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from common.data.hierarchy import Hierarchy
from papers.riemannian_adam.manifolds import ball_distance

EXACT_BELOW = 0.05  # allowed probability mass below which a row skips rejection and samples its allowed set exactly
MAX_ROUNDS = 20


class NegativeSampler:
    """K negatives per positive (u, v), from ``degree ** power`` (burn-in) or uniformly (``power=None``)."""

    def __init__(self, h: Hierarchy, k: int, power: float | None, rng: np.random.Generator) -> None:
        if k < 1:
            raise ValueError(f"k (negatives per positive) must be >= 1, got {k}")
        self.h, self.k, self.rng = h, k, rng
        w = np.ones(h.n) if power is None else np.asarray(h.degree, dtype=np.float64) ** power
        if not (w > 0).any():
            w = np.ones(h.n)
        self.p = w / w.sum()
        self.cdf = np.cumsum(self.p)
        self.cdf[-1] = 1.0
        excluded = self.p + np.bincount(h.edges[:, 1], weights=self.p[h.edges[:, 0]], minlength=h.n)
        self.allowed_mass = np.clip(1.0 - excluded, 0.0, 1.0)  # probability that a draw is a valid negative of v

    def _draw(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.minimum(np.searchsorted(self.cdf, self.rng.random(shape), side="right"), self.h.n - 1)

    def _bad(self, w: np.ndarray, v: np.ndarray, everyone: np.ndarray) -> np.ndarray:
        """Elementwise for flat arrays of candidates ``w`` for ancestors ``v``: is w = v, or (unless v's negatives
        may be anything) a descendant of v."""
        bad = w == v
        corrupt = ~everyone
        if corrupt.any():
            bad[corrupt] |= self.h.is_edge(w[corrupt], v[corrupt])
        return bad

    def sample(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(B, K) negatives for the positives (u, v)."""
        v = np.asarray(v, dtype=np.int64)
        b, k = len(v), self.k
        everyone = self.allowed_mass[v] <= 1e-12  # v is an ancestor of every other node: any node but v
        exact = (self.allowed_mass[v] < EXACT_BELOW) & ~everyone
        out = self._draw((b, k))
        flat = out.reshape(-1)
        vv, ev = np.repeat(v, k), np.repeat(everyone, k)
        todo = np.flatnonzero(self._bad(flat, vv, ev) & ~np.repeat(exact, k))
        for _ in range(MAX_ROUNDS):  # redraw only the rejected entries
            if not len(todo):
                break
            flat[todo] = self._draw((len(todo),))
            todo = todo[self._bad(flat[todo], vv[todo], ev[todo])]
        left = np.zeros(b * k, dtype=bool)
        left[todo] = True
        left |= np.repeat(exact, k)
        left = left.reshape(b, k)
        for i in np.flatnonzero(left.any(axis=1)):  # rows rejection did not finish: sample the allowed set exactly
            allowed = np.ones(self.h.n, dtype=bool)
            allowed[int(v[i])] = False
            if not everyone[i]:
                allowed[self.h.descendants(int(v[i]))] = False
            if not allowed.any():  # a single-node hierarchy: nothing to corrupt with
                raise ValueError("the hierarchy has no node to draw a negative from")
            p = self.p * allowed
            p = p / p.sum() if p.sum() > 0 else allowed / allowed.sum()
            out[i, left[i]] = self.rng.choice(self.h.n, size=int(left[i].sum()), p=p)
        return out


def poincare_loss(emb: Tensor, u: Tensor, v: Tensor, negatives: Tensor) -> Tensor:
    """Mean over the batch of d(u, v) + log sum_{w in {u} + N_v} exp(-d(w, v))."""
    cand = torch.cat([u[:, None], negatives], dim=1)
    d = ball_distance(emb[cand], emb[v][:, None, :])
    return torch.nn.functional.cross_entropy(-d, torch.zeros(len(u), dtype=torch.long, device=d.device))


@torch.no_grad()
def closure_loss(emb: Tensor, edges: Tensor, negatives: Tensor, chunk: int = 65536) -> float:
    """The loss over every closure edge with the given (fixed) negatives: the claimed train loss."""
    total = 0.0
    for s in range(0, len(edges), chunk):
        e = edges[s:s + chunk]
        total += float(poincare_loss(emb, e[:, 0], e[:, 1], negatives[s:s + chunk])) * len(e)
    return total / max(1, len(edges))


def _csr(edges: np.ndarray, n: int, by: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(edges[:, by], kind="stable")
    counts = np.bincount(edges[:, by], minlength=n)
    return np.concatenate([[0], np.cumsum(counts)]), edges[order, 1 - by]


@torch.no_grad()
def reconstruction(emb: Tensor, h: Hierarchy, *, orientation: str = "parent", chunk: int = 256) -> dict[str, float]:
    """Mean rank and MAP of the closure from the embedding ``emb`` (N, d)."""
    if orientation not in ("parent", "child"):
        raise ValueError(f"orientation must be 'parent' or 'child', got {orientation!r}")
    ptr, pos_all = _csr(h.edges, h.n, 1 if orientation == "parent" else 0)
    queries = np.flatnonzero(np.diff(ptr) > 0)
    rank_sum, n_pos, ap_sum = 0.0, 0, 0.0
    device = emb.device
    for s in range(0, len(queries), chunk):
        q = queries[s:s + chunk]
        dist = ball_distance(emb[torch.as_tensor(q, device=device)][:, None, :], emb[None, :, :])
        for i, v in enumerate(q.tolist()):
            d = dist[i]
            pos = torch.as_tensor(pos_all[ptr[v]:ptr[v + 1]], device=device)
            others = torch.ones(h.n, dtype=torch.bool, device=device)
            others[v] = False
            all_sorted = d[others].sort().values
            others[pos] = False
            neg_sorted = d[others].sort().values
            dp = d[pos]
            rank_sum += float((1 + torch.searchsorted(neg_sorted, dp, right=False)).sum())
            at_or_above = torch.searchsorted(all_sorted, dp, right=True)
            relevant = torch.searchsorted(dp.sort().values, dp, right=True)
            ap_sum += float((relevant / at_or_above).mean())
            n_pos += len(pos)
    return {"mean_rank": rank_sum / max(1, n_pos), "map": ap_sum / max(1, len(queries))}
