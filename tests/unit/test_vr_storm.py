"""STORM (papers.vr_methods.storm): the MARS formula at gamma = 1 (written here, not imported), SGD at a = 1,
unbiasedness, closure == manual loop, resume, the API contract, and bad input."""

from __future__ import annotations

import io

import pytest
import torch

from papers.vr_methods import STORM


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))


def _batch(t: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + t)
    return torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)


def _loss(model: torch.nn.Module, t: int) -> torch.Tensor:
    x, y = _batch(t)
    return torch.nn.functional.mse_loss(model(x), y)


def _storm_closure(model: torch.nn.Module, opt: STORM, steps: range) -> None:
    for t in steps:
        def closure(t: int = t) -> torch.Tensor:
            opt.zero_grad()
            loss = _loss(model, t)
            loss.backward()
            return loss

        opt.step(closure)


def _storm_manual(model: torch.nn.Module, opt: STORM, steps: range) -> None:
    params = list(model.parameters())
    for t in steps:
        if opt.has_previous():
            with opt.previous_params():
                opt.record_previous_grad(torch.autograd.grad(_loss(model, t), params))
        opt.zero_grad()
        _loss(model, t).backward()
        opt.step()


def _mars_gamma1_reference(model: torch.nn.Module, lr: float, beta1: float, steps: int) -> list[torch.Tensor]:
    """MARS (mars_type="sgd", exact, gamma = 1, no clip, wd 0) written out, float64:
        c_t = g_t + gamma * beta1 / (1 - beta1) * (g_t - g(x_{t-1}; xi_t))     (the last-grad term is 0 at t = 1)
        m_t = beta1 m_{t-1} + (1 - beta1) c_t;   x_{t+1} = x_t - lr m_t
    """
    params = list(model.parameters())
    m = [torch.zeros_like(p) for p in params]
    prev = None
    gamma = 1.0
    for t in range(steps):
        g = torch.autograd.grad(_loss(model, t), params)
        if prev is None:
            last = [torch.zeros_like(p) for p in params]
        else:
            current = [p.detach().clone() for p in params]
            with torch.no_grad():
                for p, q in zip(params, prev, strict=True):
                    p.copy_(q)
            last = torch.autograd.grad(_loss(model, t), params)
            with torch.no_grad():
                for p, q in zip(params, current, strict=True):
                    p.copy_(q)
        prev = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, mi, gi, li in zip(params, m, g, last, strict=True):
                c = gi + gamma * beta1 / (1 - beta1) * (gi - li)
                mi.mul_(beta1).add_(c, alpha=1 - beta1)
                p.sub_(lr * mi)
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("beta1", [0.9, 0.5])
def test_storm_equals_mars_with_gamma_one_exact_unclipped_identity_preconditioner(beta1: float) -> None:
    ref = _mars_gamma1_reference(_model(), lr=0.05, beta1=beta1, steps=50)
    model = _model()
    _storm_manual(model, STORM(model.parameters(), lr=0.05, a=1 - beta1), range(50))
    for p, q in zip(model.parameters(), ref, strict=True):
        torch.testing.assert_close(p.detach(), q, rtol=1e-12, atol=1e-13)


def test_a_equal_one_is_sgd_bit_for_bit() -> None:
    a, b = _model(), _model()
    _storm_manual(a, STORM(a.parameters(), lr=0.1, a=1.0), range(20))
    sgd = torch.optim.SGD(b.parameters(), lr=0.1)
    for t in range(20):
        sgd.zero_grad()
        _loss(b, t).backward()
        sgd.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_closure_and_manual_loop_give_the_same_trajectory() -> None:
    a, b = _model(), _model()
    _storm_closure(a, STORM(a.parameters(), lr=0.1, a=0.2, weight_decay=1e-2), range(15))
    _storm_manual(b, STORM(b.parameters(), lr=0.1, a=0.2, weight_decay=1e-2), range(15))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_estimator_is_unbiased_on_a_noisy_quadratic() -> None:
    """F(x) = 1/2 h x^2 per coordinate, grad f(x; xi) = (h + xi_1) x + xi_2 with the same xi at x_t and x_{t-1}.
    Each of the 10k coordinates is an independent run; the mean of d_t - grad F(x_t) is 0 within 3 SE."""
    n, h = 10_000, 2.0
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.Parameter(torch.ones(n))
    opt = STORM([x], lr=0.05, a=0.3)
    for _ in range(20):
        xi1, xi2 = 0.5 * torch.randn(n, generator=gen), torch.randn(n, generator=gen)
        if opt.has_previous():
            prev = opt.state[x]["prev_param"]
            opt.record_previous_grad([(h + xi1) * prev + xi2])
        x.grad = ((h + xi1) * x + xi2).detach()
        opt.step()
        err = opt.state[x]["d"] - h * opt.state[x]["prev_param"]  # d_t - grad F(x_t) (x_t is now prev_param)
        assert abs(float(err.mean())) <= 3 * float(err.std()) / n ** 0.5


def test_a_missing_previous_gradient_is_an_error_even_with_a_no_op_closure() -> None:
    model = _model()
    opt = STORM(model.parameters(), lr=0.1, a=0.1)
    _storm_manual(model, opt, range(1))
    _loss(model, 1).backward()
    with pytest.raises(RuntimeError, match="record_previous_grad"):
        opt.step()
    with pytest.raises(RuntimeError, match="record_previous_grad"):
        opt.step(lambda: None)  # Lightning's manual-optimization closure does nothing


def test_resume_from_state_dict_is_bit_identical() -> None:
    straight, resumed = _model(), _model()
    _storm_closure(straight, STORM(straight.parameters(), lr=0.1, a=0.1), range(8))
    first = STORM(resumed.parameters(), lr=0.1, a=0.1)
    _storm_closure(resumed, first, range(4))
    buffer = io.BytesIO()
    torch.save({"model": resumed.state_dict(), "opt": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    assert {"d", "prev_param", "step"} <= set(saved["opt"]["state"][0])
    resumed = _model()
    resumed.load_state_dict(saved["model"])
    second = STORM(resumed.parameters(), lr=0.1, a=0.1)
    second.load_state_dict(saved["opt"])
    _storm_closure(resumed, second, range(4, 8))
    assert all(torch.equal(p, q) for p, q in zip(straight.parameters(), resumed.parameters(), strict=True))


def test_api_contract_sparse_complex_groups_and_empty() -> None:
    emb = torch.nn.Embedding(5, 3, sparse=True)
    opt = STORM(emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="STORM does not support sparse gradients"):
        opt.step()
    p = torch.nn.Parameter(torch.randn(3, dtype=torch.complex128))
    p.grad = torch.randn_like(p)
    with pytest.raises(RuntimeError, match="STORM does not support complex parameters"):
        STORM([p]).step()
    model = _model()
    opt = STORM(list(model[0].parameters()))
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": list(model[2].parameters()), "lr": -1.0})
    with pytest.raises(ValueError, match="empty"):
        STORM([])


@pytest.mark.parametrize("kwargs,name", [({"lr": -1.0}, "lr"), ({"a": 0.0}, "a"), ({"a": 1.5}, "a"),
                                         ({"weight_decay": -1e-3}, "weight_decay")])
def test_invalid_hyperparameters_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        STORM(_model().parameters(), **kwargs)
