"""Run by tests/unit/test_ddp.py in a fresh interpreter: one ``common.lit.fit`` of a tiny GPT with SOAP on the
python-stdlib stream, either in one process (``single``) or with ``strategy=ddp, devices=2`` on CPU (``ddp``;
Lightning starts rank 1 by re-running this script). Rank 0 saves the final parameters and the validation curve.

    python tests/ddp_fit_script.py single|ddp OUT_DIR
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.data.text import TextDataModule  # noqa: E402
from common.lit import LanguageModelModule, fit, seed_all  # noqa: E402
from common.models.gpt import GPT, GPTConfig  # noqa: E402
from papers.soap import SOAP  # noqa: E402


def main(mode: str, out: Path) -> None:
    torch.set_num_threads(1)
    seed_all(0)
    dm = TextDataModule(corpus="python-stdlib", level="byte", block_size=16, batch_size=8, max_bytes=300_000,
                        val_batches=2, seed=0)
    dm.setup("fit")
    model = GPT(GPTConfig(vocab_size=dm.vocab_size, block_size=16, n_layer=1, n_head=2, d_model=16, dropout=0.0))
    module = LanguageModelModule(model, functools.partial(SOAP, lr=3e-3, precondition_frequency=2))
    # float64: SOAP's eigenbases of rank-deficient factors amplify float32 rounding (the all-reduce's sum order
    # changes the last bit), so only in float64 do two processes and one agree to float tolerance.
    extra = {"accelerator": "cpu", "precision": "64-true"}
    if mode == "ddp":
        extra.update(strategy="ddp", devices=2)
    res = fit(module, dm, max_steps=8, out_dir=out / mode, run_name="lm", val_every=4, trainer_kwargs=extra)
    state = {"params": [p.detach().clone() for p in module.model.parameters()], "val_curve": res.val_curve,
             "steps": res.steps_done, "diverged": res.diverged}
    rank = int(torch.distributed.get_rank()) if torch.distributed.is_initialized() else 0
    torch.save(state, out / f"{mode}_rank{rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
