"""ClassificationModule and LanguageModelModule: optimizer wiring, schedules, clipping, learning a GPT."""

import functools

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from common.lit import ClassificationModule, LanguageModelModule, fit, seed_all
from common.models import GPT, GPTConfig, mlp

V, T = 16, 16


class RepeatingTokens(pl.LightningDataModule):
    """Windows of a sequence that repeats a fixed 8-token pattern: predictable after one token."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        pattern = torch.randperm(V, generator=g)[:8]
        stream = pattern.repeat(64)
        starts = torch.randint(0, len(stream) - T - 1, (256,), generator=g)
        windows = torch.stack([stream[s : s + T + 1] for s in starts.tolist()])
        self.train_set = TensorDataset(windows[:192, :-1], windows[:192, 1:])
        self.val_set = TensorDataset(windows[192:, :-1], windows[192:, 1:])
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


def tiny_gpt() -> GPT:
    return GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=2, n_head=4, d_model=64))


def test_language_model_learns_a_repeating_sequence(tmp_path):
    seed_all(0)
    schedulers = []

    def warmup(optimizer):
        schedulers.append(torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10)))
        return schedulers[-1]

    adamw = functools.partial(torch.optim.AdamW, lr=1e-2)
    module = LanguageModelModule(tiny_gpt(), adamw, warmup, grad_clip=1.0)
    result = fit(module, RepeatingTokens(), max_steps=50, out_dir=tmp_path, run_name="lm", val_every=25,
                 limit_val_batches=4)

    initial, final = result.val_curve[0][1], result.final_val_loss
    assert initial == pytest.approx(torch.log(torch.tensor(float(V))).item(), abs=0.3)  # near-uniform at init
    assert final < 0.25 * initial
    assert [entry[0] for entry in result.val_curve] == [0, 25, 50]
    assert all(len(entry) == 2 for entry in result.val_curve)  # no accuracy for language models
    assert result.final_val_acc is None
    assert schedulers[0].last_epoch == 50  # stepped once per optimizer step, not per epoch


def test_grad_clip_bounds_the_update(tmp_path):
    seed_all(0)
    model = tiny_gpt()
    before = [p.detach().clone() for p in model.parameters()]
    module = LanguageModelModule(model, functools.partial(torch.optim.SGD, lr=1.0), grad_clip=1e-6)
    fit(module, RepeatingTokens(), max_steps=3, out_dir=tmp_path, run_name="clip", val_every=3,
        limit_val_batches=1)
    moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before, strict=True)])
    # three SGD steps of lr 1 on gradients clipped to norm 1e-6 move the weights by at most 3e-6
    assert 0 < moved.norm().item() <= 3e-6 * 1.001


def test_grad_clip_on_module_and_trainer_is_rejected(tmp_path):
    module = LanguageModelModule(tiny_gpt(), functools.partial(torch.optim.SGD, lr=0.1), grad_clip=1.0)
    with pytest.raises(ValueError, match="set only one"):
        fit(module, RepeatingTokens(), max_steps=2, out_dir=tmp_path, run_name="both", val_every=2,
            trainer_kwargs={"gradient_clip_val": 1.0})


def test_language_model_rejects_non_positive_grad_clip():
    with pytest.raises(ValueError, match="grad_clip"):
        LanguageModelModule(tiny_gpt(), torch.optim.SGD, grad_clip=0.0)


def test_optimizer_factory_gets_the_models_parameters_and_scheduler_steps_per_step():
    model = mlp(4, [8], 2)
    module = ClassificationModule(
        model,
        functools.partial(torch.optim.SGD, lr=0.5),
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=10),
    )
    config = module.configure_optimizers()
    optimizer = config["optimizer"]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == 0.5
    assert [p for g in optimizer.param_groups for p in g["params"]] == list(model.parameters())
    assert config["lr_scheduler"]["interval"] == "step"
    assert isinstance(config["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert isinstance(ClassificationModule(model, torch.optim.Adam).configure_optimizers(), torch.optim.Adam)


def test_param_groups_hook_splits_parameters():
    model = mlp(4, [8], 2)

    def no_decay_on_biases(m):
        params = dict(m.named_parameters())
        return [
            {"params": [p for n, p in params.items() if not n.endswith("bias")], "weight_decay": 0.1},
            {"params": [p for n, p in params.items() if n.endswith("bias")], "weight_decay": 0.0},
        ]

    module = LanguageModelModule(model, torch.optim.AdamW, param_groups=no_decay_on_biases)
    optimizer = module.configure_optimizers()
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]
    assert [len(g["params"]) for g in optimizer.param_groups] == [2, 2]


def test_classification_evaluate_batch_matches_cross_entropy_and_accuracy():
    torch.manual_seed(0)
    module = ClassificationModule(mlp(4, [8], 3), torch.optim.SGD)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    metrics = module.evaluate_batch((x, y))
    logits = module.model(x)
    torch.testing.assert_close(metrics["loss"], torch.nn.functional.cross_entropy(logits, y))
    assert metrics["acc"].item() == pytest.approx((logits.argmax(1) == y).float().mean().item())
