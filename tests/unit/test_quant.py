"""Fake quantization (common.quant): levels, groups, outliers, stochastic rounding, the STE gradient, and which
LLaMA modules get quantized."""

import pytest
import torch

from common.models.build import build_lm
from common.models.gpt import GPT, llama_config
from common.quant import (
    QLinear,
    QuantConfig,
    apply_grouped,
    fp_levels,
    quantize_activation_int,
    quantize_fp,
    quantize_weight_int,
)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_int4_weights_take_at_most_16_levels_per_group_within_half_a_step():
    w = _rand(6, 128)
    q = quantize_weight_int(w, bits=4, group_size=64)
    for row in range(6):
        for start in (0, 64):
            g, gq = w[row, start:start + 64], q[row, start:start + 64]
            scale = (g.max() - g.min()).clamp(min=1e-5) / 15
            assert gq.unique().numel() <= 16
            assert (g - gq).abs().max() <= scale / 2 + 1e-6
            assert torch.allclose(gq / scale, (gq / scale).round(), atol=1e-4)  # on the scale's grid


def test_int4_weights_match_the_official_formula():
    w = _rand(2, 8) * 3
    q = quantize_weight_int(w, 4, 8)
    lo, hi = w.amin(1, keepdim=True), w.amax(1, keepdim=True)
    scale = (hi - lo).clamp(min=1e-5) / 15
    zero = torch.round(-lo / scale).clamp(0, 15)
    expected = ((torch.round(w / scale) + zero).clamp(0, 15) - zero) * scale
    assert torch.equal(q, expected)


def test_activation_groups_keep_top2_exact_and_the_rest_on_16_levels():
    x = _rand(4, 64)
    x[0, 5], x[2, 40] = 25.0, -30.0
    q = quantize_activation_int(x, bits=4, group_size=32, topk=2)
    for row in range(4):
        for start in (0, 32):
            g, gq = x[row, start:start + 32], q[row, start:start + 32]
            top = g.abs().topk(2).indices
            assert torch.equal(gq[top], g[top])
            rest = torch.ones(32, dtype=torch.bool)
            rest[top] = False
            scale = g[rest].abs().max() / 7
            assert gq[rest].unique().numel() <= 16
            assert (gq[rest] / scale).round().abs().max() <= 8
            assert (g[rest] - gq[rest]).abs().max() <= scale / 2 + 1e-6


def test_groups_never_straddle_a_token_row():
    """A row of width 96 in groups of 64: a 64 group and a 32 tail; changing one row leaves the other intact."""
    x = _rand(3, 96)
    q = quantize_activation_int(x, 4, 64, 2)
    y = x.clone()
    y[1] *= 100
    qy = quantize_activation_int(y, 4, 64, 2)
    assert torch.equal(q[0], qy[0]) and torch.equal(q[2], qy[2])
    tail = quantize_activation_int(x[:, 64:], 4, 32, 2)
    assert torch.equal(q[:, 64:], tail)
    seen = []
    apply_grouped(x, 64, lambda g: seen.append(g.shape) or g)
    assert seen == [torch.Size([3, 64]), torch.Size([3, 32])]


def test_stochastic_rounding_is_unbiased():
    x = torch.full((10_000, 8), 0.3)
    x[:, 0] = 7.0  # absmax 7 -> scale 1 (top-k off), so 0.3 rounds to 0 or 1
    gen = torch.Generator().manual_seed(0)
    q = quantize_activation_int(x, 4, 8, topk=0, stochastic=True, generator=gen)
    vals = q[:, 1:].flatten()
    assert set(vals.unique().tolist()) <= {0.0, 1.0}
    se = vals.std() / vals.numel() ** 0.5
    assert abs(vals.mean().item() - 0.3) < 3 * se


def test_fp4_e1m2_levels_and_outliers():
    assert fp_levels().tolist() == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    x = _rand(2, 64)
    q = quantize_fp(x, group_size=64, topk=2)
    for row in range(2):
        g, gq = x[row], q[row]
        top = g.abs().topk(2).indices
        assert torch.equal(gq[top], g[top])
        rest = torch.ones(64, dtype=torch.bool)
        rest[top] = False
        scale = g[rest].abs().max() / 1.75
        assert gq[rest].unique().numel() <= 15
        assert torch.allclose(gq[rest] / scale * 4, (gq[rest] / scale * 4).round(), atol=1e-4)


def test_qlinear_forward_uses_quantized_weight_and_input_and_the_ste_gradient_is_gT_xq():
    torch.manual_seed(0)
    lin = QLinear(64, 16, bias=False, quant=QuantConfig(group_size=32))
    x = _rand(5, 64, seed=1).requires_grad_(True)
    y = lin(x)
    wq, xq = lin.quantized_weight(), lin.quantized_input(x)
    assert torch.equal(y, xq @ wq.T)
    g = _rand(5, 16, seed=2)
    y.backward(g)
    torch.testing.assert_close(lin.weight.grad, g.T @ xq, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(x.grad, g @ wq, rtol=1e-6, atol=1e-6)
    assert not torch.equal(wq, lin.weight.detach())


def test_quant_config_checks_and_defaults_follow_the_official_overwrite():
    with pytest.raises(ValueError, match="mode"):
        QuantConfig(mode="int8")
    with pytest.raises(ValueError, match="group_size"):
        QuantConfig(group_size=0)
    with pytest.raises(ValueError, match="unknown quant setting"):
        QuantConfig.from_mapping({"groupsize": 64})
    lin = QLinear(512, 8, quant=QuantConfig(stochastic=True))
    assert (lin.w_group, lin.a_group, lin.a_bits, lin.a_topk, lin.a_stochastic) == (256, 256, 4, 2, True)
    small = QLinear(64, 8, quant=QuantConfig(act_group_size=16, act_topk=0))
    assert (small.w_group, small.a_group, small.a_topk) == (64, 16, 0)


def test_only_the_block_projections_are_quantized():
    model = GPT(llama_config(256, 32, 2, 4, 64, quant=QuantConfig(group_size=64)))
    quantized = {n for n, m in model.named_modules() if isinstance(m, QLinear)}
    assert len(quantized) == 2 * 5  # c_attn (q, k, v), c_proj (o), c_gate, c_fc (up), c_proj (down) per layer
    assert all(n.startswith("blocks.") for n in quantized)
    assert not isinstance(model.lm_head, QLinear)
    assert type(model.wte) is torch.nn.Embedding


def test_build_lm_reads_the_quant_section_and_trains():
    model = build_lm({"kind": "llama", "n_layer": 1, "n_head": 2, "d_model": 32, "block_size": 16,
                      "quant": {"group_size": 32}}, 64)
    assert any(isinstance(m, QLinear) for m in model.modules())
    x = torch.randint(0, 64, (2, 16))
    loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 64), x.reshape(-1))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    bf = build_lm({"kind": "llama", "n_layer": 1, "n_head": 2, "d_model": 32, "block_size": 16, "pure_bf16": True},
                  64)
    assert all(p.dtype == torch.bfloat16 for p in bf.parameters())


def test_fp4_qlinear_trains_with_finite_straight_through_gradients():
    lin = QLinear(64, 8, quant=QuantConfig(mode="fp4", group_size=64))
    x = _rand(4, 64, seed=3).requires_grad_(True)
    lin(x).square().sum().backward()
    assert torch.isfinite(lin.weight.grad).all() and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="fp4"):
        QuantConfig(mode="fp4", bits=8)
