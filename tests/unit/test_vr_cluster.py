"""ClusterMomentum (after Tondji et al.; no official code), its one-cluster sampler, label noise and the
full-gradient helper."""

from __future__ import annotations

import io

import pytest
import torch

from common.data.cluster_sampler import ClusterBatchSampler, WithClusters
from common.data.label_noise import symmetric_label_noise
from common.optim.full_gradient import full_gradient
from papers.vr_methods import ClusterMomentum


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))


def _loss(model: torch.nn.Module, t: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(t)
    return torch.nn.functional.mse_loss(model(torch.randn(8, 4, generator=g)), torch.randn(8, 2, generator=g))


@pytest.mark.parametrize("dampening", [0.0, 0.9])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_one_cluster_is_torch_sgd_momentum_bit_for_bit(dampening: float, weight_decay: float) -> None:
    a, b = _model(), _model()
    cm = ClusterMomentum(a.parameters(), lr=0.1, momentum=0.9, dampening=dampening, weight_decay=weight_decay)
    sgd = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, dampening=dampening, weight_decay=weight_decay)
    for t in range(25):
        for m, o in ((a, cm), (b, sgd)):
            o.zero_grad()
            _loss(m, t).backward()
            o.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("dampening", [0.0, 0.9])
def test_round_robin_on_a_constant_gradient_gives_the_gradient_once_every_cluster_is_visited(dampening: float) -> None:
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    opt = ClusterMomentum([p], lr=1.0, n_clusters=4, momentum=0.9, dampening=dampening)
    moves = []
    for t in range(4):
        before = p.detach().clone()
        p.grad = g.clone()
        opt.step(cluster=t % 4)
        moves.append(before - p.detach())
    torch.testing.assert_close(moves[-1], g)  # first visits: every buffer is g, weights sum to 1
    torch.testing.assert_close(moves[0], g / 4)  # unvisited buffers count as 0


def test_state_dict_round_trip_keeps_every_buffer_and_visit_flag() -> None:
    straight, resumed = _model(), _model()
    make = lambda ps: ClusterMomentum(ps, lr=0.1, cluster_weights=[0.5, 0.3, 0.2], nu=0.7)  # noqa: E731
    opt = make(straight.parameters())
    for t in range(7):
        opt.zero_grad()
        _loss(straight, t).backward()
        opt.step(cluster=t % 2)
    first = make(resumed.parameters())
    for t in range(3):
        first.zero_grad()
        _loss(resumed, t).backward()
        first.step(cluster=t % 2)
    buffer = io.BytesIO()
    torch.save({"model": resumed.state_dict(), "opt": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    assert saved["opt"]["state"][0]["visited"].tolist() == [True, True, False]
    resumed = _model()
    resumed.load_state_dict(saved["model"])
    second = make(resumed.parameters())
    second.load_state_dict(saved["opt"])
    assert second.state[next(iter(resumed.parameters()))]["visited"].dtype == torch.bool
    for t in range(3, 7):
        second.zero_grad()
        _loss(resumed, t).backward()
        second.step(cluster=t % 2)
    assert all(torch.equal(p, q) for p, q in zip(straight.parameters(), resumed.parameters(), strict=True))


@pytest.mark.parametrize("kwargs,name", [
    ({"n_clusters": 0}, "n_clusters"), ({"cluster_weights": [0.5, 0.4]}, "cluster_weights"),
    ({"cluster_weights": [1.5, -0.5]}, "cluster_weights"), ({"momentum": 1.0}, "momentum"),
    ({"dampening": 2.0}, "dampening"), ({"nu": -0.1}, "nu"), ({"lr": -1.0}, "lr"), ({"weight_decay": -1.0},
                                                                                    "weight_decay")])
def test_invalid_hyperparameters_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ClusterMomentum(_model().parameters(), **kwargs)


def test_the_cluster_must_be_named_when_there_are_several() -> None:
    model = _model()
    opt = ClusterMomentum(model.parameters(), lr=0.1, n_clusters=3)
    _loss(model, 0).backward()
    for bad in (None, 3, -1):
        with pytest.raises(ValueError, match="cluster"):
            opt.step(cluster=bad)


def test_sampler_batches_hold_one_cluster_and_cover_every_example_once() -> None:
    ids = torch.tensor([0] * 10 + [1] * 7 + [2] * 3)
    sampler = ClusterBatchSampler(ids, batch_size=4, seed=1)
    epoch0, epoch1 = list(sampler), list(sampler)
    for batches in (epoch0, epoch1):
        assert sorted(i for b in batches for i in b) == list(range(20))
        assert all(len(set(ids[b].tolist())) == 1 for b in batches)
        assert len(batches) == len(sampler) == 3 + 2 + 1
    assert epoch0 != epoch1  # reshuffled each epoch
    again = ClusterBatchSampler(ids, batch_size=4, seed=1)
    assert list(again) == epoch0  # a function of (seed, epoch)
    single = ClusterBatchSampler(torch.zeros(20, dtype=torch.int64), batch_size=4, seed=1)
    assert len(list(single)) == 5


def test_with_clusters_appends_the_cluster_ids() -> None:
    class Batched:
        def __len__(self) -> int:
            return 6

        def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            idx = torch.tensor(positions)
            return idx.float(), idx % 2

    data = WithClusters(Batched(), torch.tensor([5, 5, 6, 6, 7, 7]))
    x, y, c = data.__getitems__([0, 3, 4])
    assert c.tolist() == [5, 6, 7] and y.tolist() == [0, 1, 0]


def test_symmetric_label_noise_moves_exactly_the_rate_to_other_classes() -> None:
    labels = torch.arange(1000) % 10
    noisy = symmetric_label_noise(labels, 0.3, 10, seed=4)
    assert int((noisy != labels).sum()) == 300
    assert torch.equal(noisy, symmetric_label_noise(labels, 0.3, 10, seed=4))
    assert torch.equal(labels, torch.arange(1000) % 10)  # input untouched
    with pytest.raises(ValueError, match="rate"):
        symmetric_label_noise(labels, 1.5, 10, seed=0)


def test_full_gradient_is_the_gradient_of_the_mean_loss_whatever_the_batching() -> None:
    model = _model()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 4, generator=g), torch.randn(30, 2, generator=g)
    params = list(model.parameters())
    exact = torch.autograd.grad(torch.nn.functional.mse_loss(model(x), y), params)
    batches = [(x[i:i + 7], y[i:i + 7]) for i in range(0, 30, 7)]  # uneven last batch
    mean, kept = full_gradient(params, lambda b: torch.nn.functional.mse_loss(model(b[0]), b[1]), batches,
                               keep_batches=True)
    assert len(kept) == 5 and all(p.grad is None for p in params)
    for a, b in zip(mean, exact, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
