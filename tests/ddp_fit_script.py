"""Run by tests/unit/test_ddp.py in a fresh interpreter: one ``common.lit.fit`` of a tiny GPT with SOAP on the
python-stdlib stream, either in one process (``single``) or with ``strategy=ddp, devices=2`` on CPU (``ddp``;
Lightning starts rank 1 by re-running this script). Rank 0 saves the final parameters and the validation curve.

``single_scale`` / ``ddp_scale``: the same model and data through the scale keys: ``trainer.global_batch=16`` over
batch_size 8 (2 micro-batches per step, whatever the number of processes); then ``ddp_scale`` starts an 8-step fit
that checkpoints at step 4 and is killed after step 6 (the exception in rank 0 makes Lightning kill rank 1 too, as a
lost node would: the command exits non-zero), and ``ddp_resume`` resumes it on both ranks, against 8 straight
steps in ``single_scale``. ``single_all`` / ``ddp_all`` run ``single`` / ``ddp`` and then the ``_scale`` mode in one
process (or one pair of ranks): starting two ranks costs more than their fits.

    python tests/ddp_fit_script.py single|ddp|single_scale|ddp_scale|ddp_resume|single_all|ddp_all OUT_DIR
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.data.text import TextDataModule  # noqa: E402
from common.lit import LanguageModelModule, fit, seed_all  # noqa: E402
from common.lit.fit import FitResult  # noqa: E402
from common.models.gpt import GPT, GPTConfig  # noqa: E402
from papers.soap import SOAP  # noqa: E402


def _setup() -> tuple[TextDataModule, LanguageModelModule]:
    seed_all(0)
    dm = TextDataModule(corpus="python-stdlib", level="byte", block_size=16, batch_size=8, max_bytes=300_000,
                        val_batches=2, seed=0)
    dm.setup("fit")
    model = GPT(GPTConfig(vocab_size=dm.vocab_size, block_size=16, n_layer=1, n_head=2, d_model=16, dropout=0.0))
    return dm, LanguageModelModule(model, functools.partial(SOAP, lr=3e-3, precondition_frequency=2))


def _save(path: Path, module: LanguageModelModule, res: FitResult) -> None:
    state = {"params": [p.detach().clone() for p in module.model.parameters()], "val_curve": res.val_curve,
             "steps": res.steps_done, "diverged": res.diverged}
    rank = int(torch.distributed.get_rank()) if torch.distributed.is_initialized() else 0
    torch.save(state, path.with_name(f"{path.name}_rank{rank}.pt"))


def main(mode: str, out: Path) -> None:
    torch.set_num_threads(1)
    # float64: SOAP's eigenbases of rank-deficient factors amplify float32 rounding (the all-reduce's sum order
    # changes the last bit), so only in float64 do two processes and one agree to float tolerance.
    extra: dict = {"accelerator": "cpu", "precision": "64-true"}
    if mode.endswith("_all"):
        plain = mode.removesuffix("_all")
        main(plain, out)
        main(f"{plain}_scale", out)
        return
    if mode.startswith("ddp"):
        extra.update(strategy="ddp", devices=2)
    if mode in ("single", "ddp"):
        dm, module = _setup()
        res = fit(module, dm, max_steps=8, out_dir=out / mode, run_name="lm", val_every=4, trainer_kwargs=extra)
        _save(out / mode, module, res)
        return
    if mode != "ddp_resume":
        dm, module = _setup()
        res = fit(module, dm, max_steps=4, out_dir=out / mode, run_name="accum", val_every=2,
                  trainer_kwargs={**extra, "global_batch": 16})
        _save(out / f"{mode}_accum", module, res)
    dm, module = _setup()
    if mode == "single_scale":
        res = fit(module, dm, max_steps=8, out_dir=out / mode, run_name="resume", val_every=4, trainer_kwargs=extra)
    elif mode == "ddp_scale":  # checkpoint at step 4, killed after step 6
        fit(module, dm, max_steps=8, out_dir=out / "ddp", run_name="resume", val_every=4, checkpoint=True,
            trainer_kwargs={**extra, "callbacks": [KillAfter(6)]})
    else:
        seed_all(123)  # everything must come from the checkpoint
        res = fit(module, dm, max_steps=8, out_dir=out / "ddp", run_name="resume", val_every=4, checkpoint=True,
                  resume=True, trainer_kwargs=extra)
    _save(out / f"{mode.replace('_resume', '_scale')}_resume", module, res)


class KillAfter(Callback):
    """Stands in for a lost node: raises after the given optimizer step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step >= self.step:
            raise RuntimeError(f"killed after step {trainer.global_step}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
