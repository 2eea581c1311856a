"""Shared schedules and parameter groups."""

import math

import pytest
import torch

from common.optim.param_groups import decay_split
from common.optim.schedules import linear_warmup, step_decay, warmup_cosine


def _lrs(factory, steps, lr=1.0):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = factory(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_cosine_shape():
    lrs = _lrs(warmup_cosine(100, 10, 0.05), 101)
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[100] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_linear_warmup_and_step_decay():
    assert _lrs(linear_warmup(4), 6) == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert _lrs(step_decay(10, [0.5, 0.8]), 10) == pytest.approx([1] * 5 + [0.1] * 3 + [0.01] * 2)
    with pytest.raises(ValueError):
        warmup_cosine(10, 11)
    with pytest.raises(ValueError):
        linear_warmup(0)


def test_decay_split_puts_matrices_in_the_decayed_group_once():
    model = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 5), torch.nn.LayerNorm(5))
    model[1].weight = model[0].weight.T.contiguous() if False else model[1].weight
    decay, other = decay_split(0.1)(model)
    assert decay["weight_decay"] == 0.1 and other["weight_decay"] == 0.0
    assert {tuple(p.shape) for p in decay["params"]} == {(5, 4)} and len(decay["params"]) == 2
    assert len(other["params"]) == 3  # linear bias, norm weight and bias
