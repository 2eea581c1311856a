"""SOAP's batched step (papers/soap/batched.py) against the per-tensor reference (impl="reference"): same shapes
stacked, every layout option, refreshes, bf16/fp32/fp64; equal to fp32 (fp64) rounding, state included."""

from __future__ import annotations

import pytest
import torch

from papers.soap import SOAP
from papers.soap.batched import _project
from papers.soap.layout import Layout
from papers.soap.optim import _project as project_one

SHAPES = [(6, 4), (6, 4), (6, 4), (5,), (5,), (3, 2, 4), (3, 2, 4), (4, 3, 2, 2), (0, 3), (7, 12), (1,)]
CONFIGS = {
    "default": {},
    "precondition_1d": {"precondition_1d": True},
    "merge_dims": {"merge_dims": True, "max_precond_dim": 8},
    "merge_channels_last": {"merge_dims": True, "max_precond_dim": 8, "data_format": "channels_last"},
    "one_sided": {"max_precond_dim": 6},
    "normalize_no_bias": {"normalize_grads": True, "correct_bias": False, "weight_decay": 0.0},
    "shampoo_beta": {"shampoo_beta": 0.9, "weight_decay": 0.1},
    "freeze_basis": {"freeze_basis": True},
}
TOL = {torch.float64: (1e-9, 1e-12), torch.float32: (2e-4, 2e-6), torch.bfloat16: (2e-2, 2e-2)}


def _run(impl: str, dtype: torch.dtype, kwargs: dict, steps: int = 7) -> tuple[list[torch.Tensor], SOAP]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)) for s in SHAPES]
    opt = SOAP(params, lr=1e-2, precondition_frequency=2, impl=impl, **{"precise": True, **kwargs})
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(dtype)
        opt.step()
    return params, opt


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_batched_equals_the_reference(config: str, dtype: torch.dtype) -> None:
    ref_params, ref = _run("reference", dtype, CONFIGS[config])
    got_params, got = _run("batched", dtype, CONFIGS[config])
    rtol, atol = TOL[dtype]
    for p, q in zip(got_params, ref_params, strict=True):
        torch.testing.assert_close(p, q, rtol=rtol, atol=atol)
        a, b = got.state[p], ref.state[q]
        assert a["step"] == b["step"]
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(a[key], b[key], rtol=rtol, atol=atol)
        for key in ("GG", "Q"):
            for x, y in zip(a[key], b[key], strict=True):
                assert isinstance(x, torch.Tensor) == isinstance(y, torch.Tensor)
                if isinstance(x, torch.Tensor):
                    torch.testing.assert_close(x, y, rtol=rtol, atol=atol)


def test_the_default_is_batched_and_reference_is_selectable() -> None:
    p = [torch.nn.Parameter(torch.zeros(2, 2))]
    assert SOAP(p).impl == "batched"
    assert SOAP(p, impl="reference").impl == "reference"
    assert SOAP(p, impl="foreach").impl == "batched"
    with pytest.raises(ValueError, match="impl"):
        SOAP(p, impl="bmm")


@pytest.mark.parametrize("back", [False, True])
def test_batched_projection_is_the_tensordot_chain(back: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 5, 2, generator=gen, dtype=torch.float64)
    qs = [torch.linalg.qr(torch.randn(3, k, k, generator=gen, dtype=torch.float64))[0] for k in (4, 5)] + [None]
    layout = Layout(merge=False, max_dim=100, channels_last=False)
    got = _project(x, qs, back=back)
    for i in range(3):
        bases = [q[i] if q is not None else [] for q in qs]
        torch.testing.assert_close(got[i], project_one(x[i], bases, layout, back=back), rtol=1e-12, atol=1e-12)
