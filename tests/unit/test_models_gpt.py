"""Tiny GPT: shapes, causality, pre- vs post-LN, weight tying, nanoGPT init, config validation."""

import math

import pytest
import torch

from common.models import GPT, GPTConfig

V, T = 37, 12


def make(norm_position="pre", **kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=T, norm_position=norm_position, **kw)).eval()


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_forward_shape(norm_position):
    model = make(norm_position)
    idx = torch.randint(0, V, (3, T))
    assert model(idx).shape == (3, T, V)
    assert model(idx[:, :5]).shape == (3, 5, V)


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_causal_future_tokens_do_not_change_past_logits(norm_position):
    model = make(norm_position)
    idx = torch.randint(0, V, (2, T))
    changed = idx.clone()
    changed[:, 7] = (changed[:, 7] + 1) % V
    with torch.no_grad():
        a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_pre_and_post_ln_differ_for_the_same_weights():
    pre, post = make("pre"), make("post")
    result = post.load_state_dict(pre.state_dict(), strict=False)
    assert result.missing_keys == []
    assert sorted(result.unexpected_keys) == ["ln_f.bias", "ln_f.weight"]  # post-LN has no final LN
    idx = torch.randint(0, V, (2, T))
    with torch.no_grad():
        assert not torch.allclose(pre(idx), post(idx), atol=1e-3)


def test_post_ln_output_of_each_block_is_normalized():
    model = make("post")
    with torch.no_grad():
        x = model.wte(torch.randint(0, V, (2, T))) + model.wpe(torch.arange(T))
        y = model.blocks[0](x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, T), atol=1e-5, rtol=0)


def test_weight_tying_switch():
    tied, untied = make(tie_weights=True), make(tie_weights=False)
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.lm_head.weight is not untied.wte.weight
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters()) == V * 64


def test_nanogpt_init_scales_residual_projections():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=4, d_model=256, n_head=4))
    residual_std = 0.02 / math.sqrt(2 * 4)
    assert model.blocks[0].attn.c_proj.weight.std().item() == pytest.approx(residual_std, rel=0.05)
    assert model.blocks[0].mlp.c_proj.weight.std().item() == pytest.approx(residual_std, rel=0.05)
    assert model.blocks[0].mlp.c_fc.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.all(model.blocks[0].mlp.c_fc.bias == 0)


def test_bias_switch_removes_biases():
    model = make(bias=False)
    assert all(not name.endswith("bias") for name, _ in model.named_parameters())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"d_model": 30, "n_head": 4}, "divisible"),
        ({"norm_position": "middle"}, "norm_position"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"n_layer": 0}, "n_layer"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_invalid_config_raises(kwargs, match):
    args = {"vocab_size": V, "block_size": T} | kwargs
    with pytest.raises(ValueError, match=match):
        GPTConfig(**args)


def test_sequence_longer_than_block_size_raises():
    with pytest.raises(ValueError, match="block_size"):
        make()(torch.zeros(1, T + 1, dtype=torch.long))
