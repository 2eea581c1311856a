"""GPT's LLaMA switches (RMSNorm, SwiGLU, RoPE), llama_config, the _linear hook, and the unchanged GPT-2 default."""

import math

import pytest
import torch
import torch.nn.functional as F

from common.models import gpt as gpt_module
from common.models.gpt import (
    GPT,
    GPTConfig,
    RMSNorm,
    SwiGLU,
    apply_rope,
    llama_config,
    rope_cache,
    swiglu_hidden,
)

V, T = 37, 12


def make(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=V, block_size=T, **kw)).eval()


def idx_batch() -> torch.Tensor:
    return (torch.arange(2 * T).reshape(2, T) * 7) % V


def logits(model: GPT) -> torch.Tensor:
    with torch.no_grad():
        return model(idx_batch())


# --- the default is still nanoGPT's GPT-2 ----------------------------------------------------------------

# With every LLaMA switch off the model is nanoGPT's GPT-2; these numbers pin it (torch 2.13 CPU: torch.manual_seed(0),
# build, forward idx_batch()), so a LLaMA option cannot leak into the default. The tolerance only allows for BLAS
# differences between CPUs; a change in structure, init or RNG use moves these numbers by ~1e-2.
REFERENCE = {
    "default": {
        "kw": {},
        "param_sq": 348.23829473816687, "sum": 30.651758499188873, "sq": 33.44897470629802,
        "row_a": [-0.227534681558609, 0.0553266815841198, 0.21011199057102203, 0.7860558032989502,
                  0.15864498913288116],
        "row_b": [-0.0116340396925807, -0.11485558748245239, -0.21031689643859863, 0.026312774047255516,
                  -0.14091520011425018],
        "n_keys": 29,
    },
    "post_nobias_untied": {
        "kw": {"norm_position": "post", "bias": False, "tie_weights": False},
        "param_sq": 285.1495832109617, "sum": 1.800908020719362, "sq": 20.965744821402602,
        "row_a": [0.008486422710120678, 0.2424079179763794, -0.1080513522028923, -0.20167315006256104,
                  0.42633992433547974],
        "row_b": [-0.182625412940979, -0.025443337857723236, 0.006579554174095392, 0.13485410809516907,
                  0.285003662109375],
        "n_keys": 15,
    },
}
DEFAULT_KEYS = [
    "wte.weight", "wpe.weight",
    *(f"blocks.{i}.{name}" for i in range(2) for name in (
        "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
        "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")),
    "ln_f.weight", "ln_f.bias", "lm_head.weight",
]


@pytest.mark.parametrize("case", sorted(REFERENCE))
def test_defaults_reproduce_the_model_before_the_switches(case):
    ref = REFERENCE[case]
    model = make(**ref["kw"])
    y = logits(model).double()
    assert len(model.state_dict()) == ref["n_keys"]
    if case == "default":
        assert list(model.state_dict()) == DEFAULT_KEYS
    param_sq = sum(p.double().pow(2).sum() for p in model.parameters()).item()
    assert param_sq == pytest.approx(ref["param_sq"], rel=1e-9)
    assert y.sum().item() == pytest.approx(ref["sum"], abs=1e-5)
    assert y.pow(2).sum().item() == pytest.approx(ref["sq"], rel=1e-6)
    torch.testing.assert_close(y[0, -1, :5], torch.tensor(ref["row_a"], dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(y[1, 3, :5], torch.tensor(ref["row_b"], dtype=torch.float64), rtol=0, atol=1e-6)


# --- each switch changes the model -----------------------------------------------------------------------


def test_rmsnorm_changes_output_for_the_same_weights():
    ln, rms = make(bias=False), make(bias=False, norm="rmsnorm")
    assert isinstance(rms.blocks[0].ln_1, RMSNorm) and isinstance(rms.ln_f, RMSNorm)
    rms.load_state_dict(ln.state_dict())  # same parameter names and shapes: only the normalization differs
    assert not torch.allclose(logits(ln), logits(rms), atol=1e-3)


def test_swiglu_changes_output_for_the_same_weights():
    gelu, swiglu = make(bias=False, mlp_hidden=128), make(bias=False, mlp_hidden=128, mlp="swiglu")
    result = swiglu.load_state_dict(gelu.state_dict(), strict=False)
    assert sorted(result.missing_keys) == ["blocks.0.mlp.c_gate.weight", "blocks.1.mlp.c_gate.weight"]
    assert result.unexpected_keys == []
    assert not torch.allclose(logits(gelu), logits(swiglu), atol=1e-3)


def test_swiglu_matches_its_formula():
    torch.manual_seed(1)
    mlp = SwiGLU(GPTConfig(vocab_size=V, block_size=T, mlp="swiglu", bias=False))
    x = torch.randn(2, 5, 64)
    expected = (F.silu(x @ mlp.c_gate.weight.T) * (x @ mlp.c_fc.weight.T)) @ mlp.c_proj.weight.T
    torch.testing.assert_close(mlp(x), expected)
    assert mlp.c_fc.weight.shape == (176, 64)  # int(8*64/3) = 170 -> next multiple of 16


def test_rope_replaces_learned_positions():
    learned, rope = make(bias=False), make(bias=False, positions="rope")
    assert rope.wpe is None and all(not k.startswith("wpe") for k in rope.state_dict())
    assert not any("rope" in k for k in rope.state_dict())  # the cos/sin tables are rebuilt, not checkpointed
    with torch.no_grad():
        learned.wpe.weight.zero_()  # both models now share every weight and differ only in RoPE
    result = rope.load_state_dict(learned.state_dict(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == ["wpe.weight"]
    assert not torch.allclose(logits(learned), logits(rope), atol=1e-3)
    assert rope.num_params() == rope.num_params(non_embedding=False)


def test_scale_attn_by_inverse_layer_idx():
    plain, scaled = make(n_layer=3), make(n_layer=3, scale_attn_by_inverse_layer_idx=True)
    scaled.load_state_dict(plain.state_dict())
    assert [b.attn.scale for b in scaled.blocks] == pytest.approx([1 / 4 / k for k in (1, 2, 3)])  # head dim 16
    x = torch.randn(2, T, 64)
    with torch.no_grad():
        torch.testing.assert_close(plain.blocks[0](x), scaled.blocks[0](x))  # layer 0: divided by 1
        assert not torch.allclose(plain.blocks[1](x), scaled.blocks[1](x), atol=1e-4)
    assert not torch.allclose(logits(plain), logits(scaled), atol=1e-4)


def test_scale_residual_init_switch():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=V, block_size=T, n_layer=8, d_model=256, scale_residual_init=False)
    model = GPT(config)
    assert model.blocks[0].attn.c_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.blocks[0].mlp.c_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)


# --- RMSNorm and RoPE ------------------------------------------------------------------------------------


def test_rmsnorm_matches_formula():
    torch.manual_seed(2)
    norm = RMSNorm(8, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(8))
    x = 3 * torch.randn(2, 3, 8) + 1
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    assert not torch.allclose(norm(x), F.layer_norm(x, (8,), norm.weight), atol=1e-2)  # no mean subtraction
    assert torch.equal(RMSNorm(4).weight, torch.ones(4))


def test_rope_rotates_pairs_by_position_times_frequency():
    cos, sin = rope_cache(torch.tensor([0, 1, 2]), head_dim=4, theta=100.0)
    v = [1.0, 2.0, 3.0, 4.0]  # pairs (v0, v2) and (v1, v3) rotate with frequencies 1 and 100^(-2/4) = 1/10
    x = torch.tensor(v).expand(3, 4)
    y = apply_rope(x, cos, sin)
    for pos in range(3):
        for (i, j), freq in (((0, 2), 1.0), ((1, 3), 0.1)):
            a = pos * freq
            assert y[pos, i].item() == pytest.approx(v[i] * math.cos(a) - v[j] * math.sin(a), abs=1e-6)
            assert y[pos, j].item() == pytest.approx(v[j] * math.cos(a) + v[i] * math.sin(a), abs=1e-6)
    torch.testing.assert_close(y[0], x[0])  # position 0 is not rotated


@pytest.mark.parametrize("offset", [1, 7, 100])
def test_rope_scores_depend_only_on_relative_position(offset):
    torch.manual_seed(3)
    q, k = torch.randn(2, 3, 10, 16, dtype=torch.float64), torch.randn(2, 3, 10, 16, dtype=torch.float64)
    pos = torch.arange(10)

    def scores(q_shift: int, k_shift: int) -> torch.Tensor:
        qc, qs = rope_cache(pos + q_shift, 16)
        kc, ks = rope_cache(pos + k_shift, 16)
        return apply_rope(q, qc.double(), qs.double()) @ apply_rope(k, kc.double(), ks.double()).transpose(-1, -2)

    torch.testing.assert_close(scores(offset, offset), scores(0, 0), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(scores(offset, 0), scores(0, 0), atol=1e-2)  # a relative shift does change them
    assert not torch.allclose(scores(0, 0), q @ k.transpose(-1, -2), atol=1e-2)


def test_attention_uses_the_rope_cache_of_its_block_size():
    model = make(positions="rope")
    cos, sin = rope_cache(torch.arange(T), 16)
    assert torch.equal(model.blocks[1].attn.rope_cos, cos) and torch.equal(model.blocks[1].attn.rope_sin, sin)


# --- LLaMA as a whole ------------------------------------------------------------------------------------


def llama(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(llama_config(V, T, n_layer=2, n_head=4, d_model=64, **kw)).eval()


@pytest.mark.parametrize("kw", [{"positions": "rope"}, {"mlp": "swiglu"}, "llama"], ids=["rope", "swiglu", "llama"])
def test_causality_with_llama_switches(kw):
    model = llama() if kw == "llama" else make(**kw)
    idx = idx_batch()
    changed = idx.clone()
    changed[:, 7] = (changed[:, 7] + 1) % V
    with torch.no_grad():
        a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_llama_config_structure():
    model = llama()
    names = [n for n, _ in model.named_parameters()]
    assert not [n for n in names if n.endswith("bias")]
    assert model.wpe is None and model.lm_head.weight is not model.wte.weight
    assert all(isinstance(m, RMSNorm) and m.eps == 1e-6 for m in (model.blocks[0].ln_1, model.ln_f))
    assert isinstance(model.blocks[0].mlp, SwiGLU)
    tied = llama(tie_weights=True)
    assert tied.lm_head.weight is tied.wte.weight


def test_llama_init_has_no_residual_scaling():
    torch.manual_seed(0)
    model = GPT(llama_config(V, T, n_layer=8, n_head=4, d_model=256))
    for w in (model.blocks[0].attn.c_proj.weight, model.blocks[0].mlp.c_proj.weight, model.blocks[0].mlp.c_gate.weight):
        assert w.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.equal(model.blocks[0].ln_1.weight, torch.ones(256))


def test_llama_runs_in_pure_bfloat16():
    model = llama().to(torch.bfloat16)
    y = model(idx_batch())
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), logits(llama()), atol=0.1, rtol=0.05)


# --- sizes -----------------------------------------------------------------------------------------------


def test_parameter_counts_of_small_configs():
    # GPT-2 default, d=64, 2 layers, vocab 37, block 12, tied. Per layer: LN 2*128, attn 64*192+192 + 64*64+64,
    # MLP 64*256+256 + 256*64+64 = 49984. Plus ln_f 128, wte 37*64, wpe 12*64.
    gpt = make()
    assert gpt.num_params(non_embedding=False) == 2 * 49984 + 128 + 37 * 64 + 12 * 64 == 103232
    assert gpt.num_params() == 103232 - 12 * 64
    # LLaMA, same sizes: per layer RMSNorm 2*64, attn 4*64*64, SwiGLU 3*64*176 = 50304; final norm 64;
    # untied wte and lm_head 2*37*64; no position table.
    model = llama()
    assert model.num_params(non_embedding=False) == model.num_params() == 2 * 50304 + 64 + 2 * 37 * 64 == 105408


@pytest.mark.parametrize("d_model,hidden", [(64, 176), (512, 1376), (768, 2048), (1024, 2736), (2048, 5472)])
def test_swiglu_hidden_matches_llama_configs(d_model, hidden):
    # Stable-SPAM/GaLore configs/llama_{60m,130m,350m}.json; 2048 (1B) uses 5461, unrounded: pass mlp_hidden.
    assert swiglu_hidden(d_model) == hidden
    assert swiglu_hidden(d_model, multiple_of=256) % 256 == 0 and swiglu_hidden(d_model, 256) >= 8 * d_model // 3


def test_known_model_sizes_on_meta_device():
    with torch.device("meta"):
        gpt2 = GPT(GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, d_model=768))
        llama60 = GPT(llama_config(32000, 256, n_layer=8, n_head=8, d_model=512))
    assert gpt2.num_params() == 123_653_376  # nanoGPT prints "number of parameters: 123.65M" for gpt2
    assert llama60.blocks[0].mlp.c_fc.out_features == 1376
    assert llama60.num_params() == 8 * (4 * 512**2 + 3 * 512 * 1376 + 2 * 512) + 512 + 2 * 32000 * 512 == 58_073_600


# --- the quantization hook -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gpt", "llama"])
def test_every_block_projection_comes_from_the_linear_factory(monkeypatch, kind):
    made: list[torch.nn.Linear] = []
    original = gpt_module._linear

    def recording(in_features, out_features, bias, config):
        layer = original(in_features, out_features, bias, config)
        made.append(layer)
        return layer

    monkeypatch.setattr(gpt_module, "_linear", recording)
    model = llama() if kind == "llama" else make()
    block_linears = [m for m in model.blocks.modules() if isinstance(m, torch.nn.Linear)]
    assert len(made) == len(block_linears) == 2 * (5 if kind == "llama" else 4)
    assert {id(m) for m in made} == {id(m) for m in block_linears}
    assert all(m is not model.lm_head for m in made)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"norm": "batchnorm"}, "norm"),
        ({"mlp": "relu"}, "mlp"),
        ({"positions": "alibi"}, "positions"),
        ({"positions": "rope", "d_model": 36, "n_head": 4}, "even head size"),
        ({"norm_eps": 0.0}, "norm_eps"),
        ({"mlp_hidden": 0}, "mlp_hidden"),
        ({"multiple_of": 0}, "multiple_of"),
        ({"rope_theta": -1.0}, "rope_theta"),
    ],
)
def test_invalid_switches_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**({"vocab_size": V, "block_size": T} | kwargs))
