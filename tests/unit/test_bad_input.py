"""Bad input to every optimizer in the zoo: invalid hyperparameters (one ValueError naming the argument), wrong
types, and NaN/Inf gradients, with the behaviour decided per optimizer (tests/optimizer_zoo.py):

* ``propagates`` (RAdam, AdaBelief, SophiaG/H, MARS, SOAP): the step runs and the bad value reaches the
  parameters, exactly as the official code and torch.optim do (a guard would change the method); a training
  run is then stopped by DivergenceMonitor and recorded as diverged, and the run goes on.
* ``clips`` (SophiaG/H): an Inf gradient gives a bounded step (Sophia clamps the update to [-1, 1] x lr), so the
  parameters stay finite; a NaN propagates as above.
* ``raises`` (Shampoo): the preconditioner's eigh fails on the poisoned statistics with EighError; ``fit``
  records that arm as diverged with the error as its reason, the run goes on.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from common.lit import ClassificationModule, fit
from common.optim.base import CheckedOptimizer
from common.optim.linalg import EighError
from reproduce.registry import paper_ids
from tests.optimizer_zoo import CLIPS, NAMES, NOT_IN_ZOO, PROPAGATES, RAISES, ZOO, step_with

BAD_VALUES = {
    "lr": [-1e-3, float("nan"), float("inf"), "0.01", None],
    "betas": [(1.0, 0.9), (0.9, 1.0), (-0.1, 0.9), (0.9,), (0.9, 0.99, 0.999), "0.9,0.99", (0.9, float("nan"))],
    "eps": [0.0, -1e-8, float("nan"), "1e-8"],
    "weight_decay": [-0.1, float("inf"), "0"],
    "rho": [-0.01, float("nan")],
    "gamma": [-0.5, float("nan")],
}
CASES = [(name, key, bad) for name in NAMES for key in ZOO[name].hyper for bad in BAD_VALUES[key]
         if not (bad == 0 and key in ZOO[name].zero_ok)]


def _params() -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]


def test_every_exported_optimizer_is_in_the_zoo():
    """A paper's optimizer (anything it exports that subclasses torch.optim.Optimizer) must be in the zoo, so the
    generic contract, property, resume, DDP and bad-input tests cover it: add one line to tests/optimizer_zoo.py."""
    covered = {entry.cls for entry in ZOO.values()}
    exported = set()
    for pid in paper_ids():
        module = importlib.import_module(f"papers.{pid}")
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, torch.optim.Optimizer) and value.__module__.startswith(
                    "papers."):
                exported.add(value)
    missing = sorted(c.__name__ for c in exported - covered if c.__name__ not in NOT_IN_ZOO)
    assert not missing, f"add these optimizers to ZOO in tests/optimizer_zoo.py: {missing}"
    assert all(issubclass(c, CheckedOptimizer) for c in covered)


@pytest.mark.parametrize(("name", "key", "bad"), CASES, ids=[f"{n}-{k}-{b!r}" for n, k, b in CASES])
def test_invalid_hyperparameter_is_one_value_error_naming_it(name, key, bad):
    with pytest.raises(ValueError, match=key) as info:
        ZOO[name].make(_params(), **{key: bad})
    assert "\n" not in str(info.value)  # one line


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_param_group_is_accepted_and_ignored(name):
    """As in torch.optim (decay_split yields an empty no-decay group for a bias-free model): no state, no error,
    and the optimizer round-trips. A wholly empty parameter list is an error (test_optim_contract)."""
    params = _params()
    opt = ZOO[name].make(params[:1])
    opt.add_param_group({"params": []})
    step_with(opt, params[:1], [torch.ones(4, 3)], 1)
    assert len(opt.param_groups) == 2 and sum(isinstance(k, torch.Tensor) for k in opt.state) == 1
    again = ZOO[name].make(params[:1])
    again.add_param_group({"params": []})
    again.load_state_dict(opt.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_params_that_are_not_tensors_are_rejected(name):
    with pytest.raises(TypeError):
        ZOO[name].make([1.0, 2.0])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_gradient_does_what_the_zoo_says(name, bad):
    entry = ZOO[name]
    params = _params()
    opt = entry.make(params)
    gen = torch.Generator().manual_seed(1)
    good = [[torch.randn(p.shape, generator=gen) for p in params] for _ in range(4)]
    step_with(opt, params, good[0], 0)
    before = [p.detach().clone() for p in params]
    poisoned = [g.clone() for g in good[1]]
    poisoned[0][0, 0] = bad
    if entry.nonfinite_grad == RAISES:
        with pytest.raises(EighError, match="eigh failed"):
            for t in range(1, 4):
                step_with(opt, params, poisoned if t == 1 else good[t], t)
        return
    assert entry.nonfinite_grad in (PROPAGATES, CLIPS)
    clipped = entry.nonfinite_grad == CLIPS and not math.isnan(bad)
    # Sophia: the Inf enters the step only (a Hessian estimate of Inf would make m/h = Inf/Inf = NaN: propagates)
    step_with(opt, params, poisoned, 1, hessian_every=10**9 if clipped else 2)
    for t in range(2, 4):
        step_with(opt, params, good[t], t)
    if clipped:
        assert all(torch.isfinite(p).all() for p in params)
        # three steps of at most lr each (the clamp), plus decoupled weight decay lr * wd * |p| (|p| < 3 here)
        assert (params[0] - before[0]).abs().max() <= 3 * opt.param_groups[0]["lr"] * (1 + 3 * 0.1 + 1e-6)
        return
    assert not torch.isfinite(params[0]).all()  # the poisoned tensor is visibly poisoned, never silently fine
    assert torch.isfinite(params[1]).all() or entry.cls.__name__ in ("MARS", "SOAP")  # global norms may spread it
    assert not torch.equal(before[0], params[0])


class _Blobs(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 8, generator=g)
        self.data = TensorDataset(x, (x[:, 0] > 0).long())

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=16)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=32)


class _PoisonedGrad(ClassificationModule):
    """Writes a NaN into one gradient entry at step 3 (what a bf16 overflow or a bad batch does)."""

    def on_after_backward(self) -> None:
        if self.global_step == 3:
            next(self.model.parameters()).grad[0, 0] = float("nan")


@pytest.mark.parametrize("name", NAMES)
def test_a_nan_gradient_in_training_marks_the_arm_diverged_and_returns(name, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    factory = functools.partial(ZOO[name].make)
    res = fit(_PoisonedGrad(model, factory), _Blobs(), max_steps=12, out_dir=tmp_path, run_name=name, val_every=6)
    assert res.diverged, res
    assert res.steps_done < 12
    if ZOO[name].nonfinite_grad == RAISES:
        assert "eigh failed" in res.divergence_reason
    else:
        assert "non-finite parameters" in res.divergence_reason or "nan" in res.divergence_reason
