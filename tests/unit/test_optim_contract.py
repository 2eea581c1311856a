"""The API contract every optimizer in the repo keeps (torch.optim's behaviour, so any of them drops into a training
loop written for torch.optim), checked the same way for all of them: closures, params without grad, sparse/complex
errors, per-group validation, an empty parameter list, and a bit-identical state_dict resume."""

import io

import pytest
import torch

from tests.optimizer_zoo import NAMES, OPTIMIZERS  # every optimizer; add new ones there (one line)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))


def _loss(model: torch.nn.Module, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(step)
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 2, generator=g)
    return torch.nn.functional.mse_loss(model(x), y)


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: range) -> None:
    for t in steps:
        opt.zero_grad()
        _loss(model, t).backward()
        opt.step()


@pytest.mark.parametrize("name", NAMES)
def test_closure_runs_with_grad_enabled_returns_the_loss_and_equals_a_plain_step(name):
    model, twin = _model(), _model()
    opt, opt_twin = OPTIMIZERS[name](model.parameters()), OPTIMIZERS[name](twin.parameters())
    start = [p.detach().clone() for p in model.parameters()]

    for t in range(3):  # several steps: SOAP's first step only sets up its preconditioner, SPAM's first is a reset

        def closure(t: int = t) -> torch.Tensor:
            opt.zero_grad()
            loss = _loss(model, t)
            loss.backward()
            return loss

        with torch.no_grad():  # step() must re-enable grad for the closure
            loss = opt.step(closure)
        opt_twin.zero_grad()
        loss_twin = _loss(twin, t)
        loss_twin.backward()
        opt_twin.step()
        assert isinstance(loss, torch.Tensor) and loss.requires_grad and loss.item() == loss_twin.item()
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            assert torch.equal(p, q)
    assert any(not torch.equal(p, p0) for p, p0 in zip(model.parameters(), start, strict=True))  # it moved
    assert opt.step() is None  # no closure: no loss


@pytest.mark.parametrize("name", NAMES)
def test_params_without_grad_are_left_alone(name):
    model = _model()
    frozen = torch.nn.Parameter(torch.ones(3, 3))
    opt = OPTIMIZERS[name]([*model.parameters(), frozen])
    _train(model, opt, range(3))
    assert torch.equal(frozen, torch.ones(3, 3)) and len(opt.state[frozen]) == 0


@pytest.mark.parametrize("name", NAMES)
def test_sparse_gradient_is_one_clear_error(name):
    emb = torch.nn.Embedding(5, 3, sparse=True)
    opt = OPTIMIZERS[name](emb.parameters())
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match=f"{type(opt).__name__} does not support sparse gradients"):
        opt.step()


@pytest.mark.parametrize("name", NAMES)
def test_complex_parameters_are_one_clear_error(name):
    p = torch.nn.Parameter(torch.randn(3, 3, dtype=torch.complex64))
    opt = OPTIMIZERS[name]([p])
    p.grad = torch.randn_like(p)
    with pytest.raises(RuntimeError, match=f"{type(opt).__name__} does not support complex parameters"):
        opt.step()


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_lr_in_a_later_param_group_fails_by_name(name):
    model = _model()
    opt = OPTIMIZERS[name](list(model[0].parameters()))
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": list(model[2].parameters()), "lr": -1.0})


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_parameter_list_is_rejected(name):
    with pytest.raises(ValueError, match="empty"):
        OPTIMIZERS[name]([])


@pytest.mark.parametrize("name", NAMES)
def test_resume_from_state_dict_is_bit_identical(name):
    straight, resumed = _model(), _model()
    opt = OPTIMIZERS[name](straight.parameters())
    _train(straight, opt, range(7))

    first = OPTIMIZERS[name](resumed.parameters())
    _train(resumed, first, range(3))
    buffer = io.BytesIO()
    torch.save({"model": resumed.state_dict(), "opt": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    resumed = _model()
    resumed.load_state_dict(saved["model"])
    second = OPTIMIZERS[name](resumed.parameters())
    second.load_state_dict(saved["opt"])
    _train(resumed, second, range(3, 7))
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
