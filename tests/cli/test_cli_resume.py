"""``reproduce <paper> --resume``: a claim killed in the middle of one of its Lightning runs, resumed with the same
command plus ``--resume``, reuses the runs that had finished, continues the interrupted one from its checkpoint and
writes the same record (summary, curves, verdict) as an uninterrupted run."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import Callback

from reproduce.cli import main

ARGS = ["radam", "c2", "--preset", "smoke", "--seeds", "1", "claims.c2.lrs=[1e-3]", "claims.c2.steps=8"]
_RealTrainer = pl.Trainer


class _Kill(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= 6:  # past the step-4 validation, so a checkpoint exists
            raise KeyboardInterrupt


def _same_runs(a: dict, b: dict) -> None:
    assert a["summary"] == b["summary"] and a["verdict"] == b["verdict"] and a["headline"] == b["headline"]
    for ra, rb in zip(a["arms"]["runs"], b["arms"]["runs"], strict=True):
        for key in ("arm", "lr", "seed", "phase", "final_val_loss", "val_curve", "failed", "diverged"):
            assert ra[key] == rb[key], key


@pytest.mark.slow  # two claim runs
def test_resume_continues_a_killed_claim_and_matches(tmp_path, monkeypatch, capsys):
    assert main([*ARGS, "--out", str(tmp_path / "straight")]) == 0
    straight = json.loads((tmp_path / "straight" / "c2.json").read_text())

    made = []

    def trainer(*args, **kwargs):  # the third run of the claim gets killed after step 6
        made.append(1)
        if len(made) == 3:
            kwargs["callbacks"] = [*kwargs["callbacks"], _Kill()]
        return _RealTrainer(*args, **kwargs)

    monkeypatch.setattr(pl, "Trainer", trainer)
    out = tmp_path / "killed"
    with pytest.raises(SystemExit):  # Lightning turns Ctrl+C into a graceful shutdown and exit(1)
        main([*ARGS, "--out", str(out)])
    monkeypatch.setattr(pl, "Trainer", _RealTrainer)
    assert not (out / "c2.json").exists()
    assert len(list((out / "runs").rglob("*.json"))) == 2  # the two finished runs
    assert list((out / "checkpoints").rglob("last.ckpt"))  # the interrupted one's checkpoint
    capsys.readouterr()

    assert main([*ARGS, "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert err.count("reusing the finished run") == 2
    _same_runs(straight, json.loads((out / "c2.json").read_text()))

    assert main([*ARGS, "--out", str(out), "--resume"]) == 0  # everything finished: nothing runs again
    assert "finished record" in capsys.readouterr().err


def test_resume_needs_an_existing_out_folder(tmp_path, capsys):
    assert main([*ARGS, "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main([*ARGS, "--resume", "--out", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
