"""The Poincaré-embedding loss, negative sampler and reconstruction metrics on a tiny tree checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.data.hierarchy import balanced_tree, closure_from_parents
from papers.riemannian_adam.embedding import NegativeSampler, closure_loss, poincare_loss, reconstruction

#   r
#  / \
# a   b        closure edges (child, ancestor): (a, r), (b, r), (c, a), (c, r)
# |
# c
TREE = closure_from_parents(["r", "a", "b", "c"], {1: [0], 2: [0], 3: [1]})
R, A, B, C = 0, 1, 2, 3
# points on one diameter, so d(x, y) = |2 artanh(x) - 2 artanh(y)|
X = {R: 0.0, A: 0.5, B: 0.45, C: 0.7}
EMB = torch.tensor([[X[i], 0.0] for i in range(4)], dtype=torch.float64)


def _d(i: int, j: int) -> float:
    return abs(2 * math.atanh(X[i]) - 2 * math.atanh(X[j]))


def test_loss_is_the_distance_plus_log_sum_exp_over_the_positive_and_its_negatives():
    loss = poincare_loss(EMB, torch.tensor([C, B]), torch.tensor([A, R]), torch.tensor([[B, R], [A, C]]))
    first = _d(C, A) + math.log(math.exp(-_d(C, A)) + math.exp(-_d(B, A)) + math.exp(-_d(R, A)))
    second = _d(B, R) + math.log(math.exp(-_d(B, R)) + math.exp(-_d(A, R)) + math.exp(-_d(C, R)))
    assert float(loss) == pytest.approx((first + second) / 2, rel=1e-12)
    edges = torch.from_numpy(TREE.edges)
    negs = torch.tensor([[B, R]] * len(edges))
    per_edge = [float(poincare_loss(EMB, e[:1, 0], e[:1, 1], negs[:1])) for e in edges.split(1)]
    assert closure_loss(EMB, edges, negs, chunk=3) == pytest.approx(sum(per_edge) / 4, rel=1e-12)


def test_mean_rank_and_map_by_hand():
    # v = r: no negatives, every rank 1, AP 1.  v = a: b (0.129) is nearer than c (0.636): rank(c, a) = 2, AP = 1/2
    parent = reconstruction(EMB, TREE)
    assert parent["mean_rank"] == pytest.approx((1 + 1 + 1 + 2) / 4)
    assert parent["map"] == pytest.approx((1 + 0.5) / 2)
    # child orientation (Nickel & Kiela): q = a: r is 3rd (b, c nearer), AP 1/3; q = b likewise;
    # q = c: a 1st, r 2nd among negatives (b nearer), at position 3: AP (1 + 2/3) / 2
    child = reconstruction(EMB, TREE, orientation="child")
    assert child["mean_rank"] == pytest.approx((3 + 3 + 1 + 2) / 4)
    assert child["map"] == pytest.approx((1 / 3 + 1 / 3 + 5 / 6) / 3)


def test_chunking_does_not_change_the_metrics_and_a_structured_embedding_beats_noise():
    t = balanced_tree(3, 3)
    depth = torch.as_tensor(t.n_ancestors, dtype=torch.float64)
    # children fan out around their parent, deeper = further out
    angle = torch.zeros(t.n, dtype=torch.float64)
    for i, name in enumerate(t.names):
        digits = [int(c) for c in name.split(".")[1:]]
        angle[i] = sum(dg * 3.0 ** -(k + 1) for k, dg in enumerate(digits)) * 2 * math.pi + 0.3
    emb = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * (0.3 * depth)[:, None] / 1.0
    full = reconstruction(emb, t)
    assert reconstruction(emb, t, chunk=5) == pytest.approx(full)
    assert 1.0 <= full["mean_rank"] and 0 < full["map"] <= 1.0
    assert reconstruction(torch.zeros(t.n, 2, dtype=torch.float64) + 0.1 * torch.randn(
        t.n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), t)["map"] < full["map"]


@pytest.mark.parametrize("power", [None, 0.75])
def test_negatives_are_never_the_ancestor_or_its_descendants_and_the_root_does_not_spin(power):
    sampler = NegativeSampler(TREE, 10, power, np.random.default_rng(0))
    u = np.array([A, B, C, C] * 50)
    v = np.array([R, R, A, R] * 50)
    negs = sampler.sample(u, v)
    assert negs.shape == (200, 10)
    for i in range(200):
        if v[i] == R:  # every other node is a descendant of the root: draw from every node but r
            assert R not in negs[i]
        else:  # v = a: not a, not its descendant c
            assert set(negs[i]) <= {R, B}
    assert set(negs[v == R].ravel()) == {A, B, C}


def test_sampler_on_a_bigger_tree_is_valid_deterministic_and_follows_the_degree_power():
    t = balanced_tree(3, 4)
    u, v = t.edges[:, 0], t.edges[:, 1]
    a = NegativeSampler(t, 10, 0.75, np.random.default_rng(5)).sample(u, v)
    b = NegativeSampler(t, 10, 0.75, np.random.default_rng(5)).sample(u, v)
    assert np.array_equal(a, b)
    root = v == 0
    assert not t.is_edge(a[~root], v[~root, None]).any() and not (a == v[:, None]).any()
    # degree^0.75 favours the well-connected inner nodes over uniform
    uni = NegativeSampler(t, 10, None, np.random.default_rng(5)).sample(u, v)
    inner = t.n_descendants > 0
    assert inner[a].mean() > inner[uni].mean() + 0.05


def test_sampler_rejects_a_bad_k():
    with pytest.raises(ValueError, match="k"):
        NegativeSampler(TREE, 0, None, np.random.default_rng(0))
