"""SVRG / alpha-SVRG (papers.vr_methods.svrg): reductions, the snapshot identity, a hand-computed epoch, cache ==
recompute, the coefficient schedules, resume, and bad input."""

from __future__ import annotations

import io
import math

import pytest
import torch

from common.optim.full_gradient import full_gradient
from papers.vr_methods import SVRG, linear_coefficients


@pytest.fixture(autouse=True)
def _float64():
    """float64 for these tests only (the default dtype is process-global)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _data(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randn(n, 2, generator=g)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()


def _loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return torch.nn.functional.mse_loss(model(batch[0]), batch[1])


def _batches(x: torch.Tensor, y: torch.Tensor, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def _svrg_epochs(model: torch.nn.Module, opt: SVRG, batches: list, epochs: int, *, cache: bool = False,
                 start_epoch: int = 0) -> None:
    """The recompute (or cache) loop of the SVRG docstring, one snapshot per epoch."""
    params = [p for g in opt.param_groups for p in g["params"]]
    for _ in range(start_epoch, epochs):
        mu, per_batch = full_gradient(params, lambda b: _loss(model, b), batches, keep_batches=cache)
        opt.take_snapshot(mu, cache=per_batch if cache else None)
        _inner(model, opt, batches, cache=cache)


def _inner(model: torch.nn.Module, opt: SVRG, batches: list, *, cache: bool = False, start: int = 0) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, b in enumerate(batches[start:], start):
        if cache:
            opt.use_cached_snapshot_grad(i)
        else:
            with opt.snapshot_params():
                opt.record_snapshot_grad(torch.autograd.grad(_loss(model, b), params))
        opt.zero_grad()
        _loss(model, b).backward()
        opt.step()


BASES = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.05),
}


@pytest.mark.parametrize("base", list(BASES))
def test_alpha_zero_is_the_bare_base_optimizer_bit_for_bit(base: str) -> None:
    x, y = _data()
    batches = _batches(x, y)
    a, b = _model(), _model()
    opt = SVRG(a.parameters(), base=BASES[base], coefficient=0.0)
    _svrg_epochs(a, opt, batches, epochs=3)
    ref = BASES[base](b.parameters())
    for _ in range(3):
        for batch in batches:
            ref.zero_grad()
            _loss(b, batch).backward()
            ref.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_before_the_first_snapshot_svrg_is_the_base_optimizer() -> None:
    x, y = _data()
    a, b = _model(), _model()
    opt, ref = SVRG(a.parameters(), base=BASES["sgd"]), BASES["sgd"](b.parameters())
    for batch in _batches(x, y):
        for m, o in ((a, opt), (b, ref)):
            o.zero_grad()
            _loss(m, batch).backward()
            o.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_at_the_snapshot_the_estimate_is_the_full_gradient_mix(alpha: float) -> None:
    """theta = theta~: g = grad f_B - alpha (grad f_B - mu) = (1 - alpha) grad f_B + alpha mu (mu at alpha 1)."""
    x, y = _data()
    batches = _batches(x, y)
    model = _model()
    opt = SVRG(model.parameters(), base=lambda ps: torch.optim.SGD(ps, lr=1.0), coefficient=alpha)
    params = list(model.parameters())
    mu, _ = full_gradient(params, lambda b: _loss(model, b), batches)
    opt.take_snapshot(mu)
    batch = batches[1]
    with opt.snapshot_params():
        opt.record_snapshot_grad(torch.autograd.grad(_loss(model, batch), params))
    g_b = torch.autograd.grad(_loss(model, batch), params)
    before = [p.detach().clone() for p in params]
    opt.zero_grad()
    _loss(model, batch).backward()
    opt.step()
    for p, p0, m, g in zip(params, before, mu, g_b, strict=True):
        estimate = p0 - p.detach()  # lr 1, plain SGD: the update is the estimate
        if alpha == 1.0:
            torch.testing.assert_close(estimate, m, rtol=1e-12, atol=1e-15)
        else:
            torch.testing.assert_close(estimate, (1 - alpha) * g + alpha * m, rtol=1e-12, atol=1e-15)


def test_one_epoch_on_least_squares_matches_the_closed_form_recursion() -> None:
    """f_i(w) = 1/2 (a_i^T w - b_i)^2, n = 4, batch 1 in order, SGD lr eta: w <- w - eta (a_i a_i^T (w - w~) + mu)."""
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, 3, generator=gen), torch.randn(4, generator=gen)
    w = torch.nn.Parameter(torch.randn(3, generator=gen))
    eta = 0.1
    opt = SVRG([w], base=lambda ps: torch.optim.SGD(ps, lr=eta))
    w_ref = w.detach().clone()
    def loss(i: int) -> torch.Tensor:
        return 0.5 * (a[i] @ w - b[i]) ** 2

    for _ in range(2):  # two epochs
        snap = w_ref.clone()
        mu = (a * (a @ snap - b)[:, None]).mean(0)
        for i in range(4):
            w_ref = w_ref - eta * (a[i] * (a[i] @ (w_ref - snap)) + mu)
        full, _ = full_gradient([w], loss, range(4), batch_size=lambda _: 1)
        opt.take_snapshot(full)
        for i in range(4):
            with opt.snapshot_params():
                opt.record_snapshot_grad(torch.autograd.grad(loss(i), [w]))
            opt.zero_grad()
            loss(i).backward()
            opt.step()
    torch.testing.assert_close(w.detach(), w_ref, rtol=1e-12, atol=1e-14)


def test_cache_mode_replays_the_same_trajectory_as_recompute() -> None:
    x, y = _data()
    batches = _batches(x, y)
    a, b = _model(), _model()
    recompute = SVRG(a.parameters(), base=BASES["sgd"])
    cached = SVRG(b.parameters(), base=BASES["sgd"], mode="cache")
    _svrg_epochs(a, recompute, batches, epochs=3)
    _svrg_epochs(b, cached, batches, epochs=3, cache=True)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_cache_mode_refuses_above_its_memory_bound() -> None:
    model = _model()
    opt = SVRG(model.parameters(), base=BASES["sgd"], mode="cache", max_cache_bytes=100)
    params = list(model.parameters())
    mu, per_batch = full_gradient(params, lambda b: _loss(model, b), _batches(*_data()), keep_batches=True)
    with pytest.raises(ValueError, match="max_cache_bytes"):
        opt.take_snapshot(mu, cache=per_batch)


def test_linear_schedule_is_piecewise_constant_linspace_ending_at_zero() -> None:
    assert linear_coefficients(0.75, 4) == pytest.approx([0.75, 0.5, 0.25, 0.0])
    assert linear_coefficients(0.75, 4)[-1] == 0.0 and linear_coefficients(0.6, 1) == [0.6]
    x, y = _data()
    batches = _batches(x, y)
    model = _model()
    opt = SVRG(model.parameters(), base=BASES["sgd"], coefficient=0.75, schedule="linear", n_intervals=4)
    seen = []
    params = list(model.parameters())
    for _ in range(5):
        mu, _ = full_gradient(params, lambda b: _loss(model, b), batches)
        opt.take_snapshot(mu)
        seen.append(opt.current_coefficient())
        _inner(model, opt, batches)
        assert opt.current_coefficient() == seen[-1]  # constant within the interval
    assert seen == pytest.approx([0.75, 0.5, 0.25, 0.0, 0.0])


@pytest.mark.parametrize("planted", [0.6, 5.0])
def test_optimal_coefficient_recovers_a_planted_cov_var_ratio(planted: float) -> None:
    """g = c s + noise per coordinate: Cov(s, g) / Var(s) = c (clamped to [-2, 2])."""
    p = torch.nn.Parameter(torch.zeros(50))
    opt = SVRG([p], base=lambda ps: torch.optim.SGD(ps, lr=0.0), schedule="optimal")
    opt.take_snapshot([torch.zeros(50)])
    gen = torch.Generator().manual_seed(0)
    n = 400
    for _ in range(n):
        s = torch.randn(50, generator=gen)
        g = planted * s + 0.5 * torch.randn(50, generator=gen)
        opt.record_snapshot_grad([s])
        p.grad = g.clone()
        opt.step()
    st = opt.state[p]
    m = st["svrg_stat_n"]
    ms, mg = st["svrg_stat_s"] / m, st["svrg_stat_g"] / m
    alpha = (st["svrg_stat_sg"] / m - ms * mg) / (st["svrg_stat_ss"] / m - ms * ms)
    expected = min(planted, 2.0)
    clamped = alpha.clamp(-2, 2)
    se = 0.5 / math.sqrt(n)  # the regression slope's standard error with unit-variance s
    assert torch.all((clamped - expected).abs() <= 3 * se + 1e-12)


def test_first_step_of_an_interval_uses_alpha_one_under_the_optimal_schedule() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    opt = SVRG([p], base=lambda ps: torch.optim.SGD(ps, lr=1.0), schedule="optimal")
    mu = torch.tensor([1.0, 2.0, 3.0])
    opt.take_snapshot([mu])
    opt.record_snapshot_grad([torch.tensor([5.0, 5.0, 5.0])])
    p.grad = torch.tensor([5.0, 5.0, 5.0])
    opt.step()
    torch.testing.assert_close(p.detach(), -mu)


def test_a_forgotten_snapshot_gradient_is_an_error() -> None:
    x, y = _data()
    model = _model()
    opt = SVRG(model.parameters(), base=BASES["sgd"])
    mu, _ = full_gradient(list(model.parameters()), lambda b: _loss(model, b), _batches(x, y))
    opt.take_snapshot(mu)
    _loss(model, (x, y)).backward()
    with pytest.raises(RuntimeError, match="record_snapshot_grad"):
        opt.step()


def test_state_dict_round_trip_mid_interval_resumes_the_same_run() -> None:
    x, y = _data()
    batches = _batches(x, y)
    straight, resumed = _model(), _model()
    make = lambda ps: SVRG(ps, base=BASES["adamw"], coefficient=0.75, schedule="linear", n_intervals=3)  # noqa: E731
    opt = make(straight.parameters())
    _svrg_epochs(straight, opt, batches, epochs=3)

    first = make(resumed.parameters())
    _svrg_epochs(resumed, first, batches, epochs=1)
    params = list(resumed.parameters())
    mu, _ = full_gradient(params, lambda b: _loss(resumed, b), batches)
    first.take_snapshot(mu)
    _inner(resumed, first, batches[:2])  # stop in the middle of the second interval
    buffer = io.BytesIO()
    torch.save({"model": resumed.state_dict(), "opt": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    assert "svrg_snapshot" in saved["opt"]["state"][0] and "exp_avg" in saved["opt"]["base_state"][0]
    resumed = _model()
    resumed.load_state_dict(saved["model"])
    second = make(resumed.parameters())
    second.load_state_dict(saved["opt"])
    assert second.current_coefficient() == pytest.approx(0.375)
    _inner(resumed, second, batches, start=2)
    _svrg_epochs(resumed, second, batches, epochs=3, start_epoch=2)
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("kwargs,name", [
    ({"coefficient": float("nan")}, "coefficient"),
    ({"coefficient": "1"}, "coefficient"),
    ({"schedule": "cosine"}, "schedule"),
    ({"schedule": "linear"}, "n_intervals"),
    ({"schedule": "linear", "n_intervals": 0}, "n_intervals"),
    ({"mode": "stale"}, "mode"),
    ({"max_cache_bytes": -1}, "max_cache_bytes"),
    ({"base": None}, "base"),
    ({"base": lambda ps: object()}, "base"),
])
def test_invalid_hyperparameters_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    args = {"base": BASES["sgd"], **kwargs}
    with pytest.raises(ValueError, match=name):
        SVRG(_model().parameters(), **args)
