"""DDP on CPU (gloo), for every optimizer in the zoo: a 2-process run where each rank takes half of the global batch
ends with the parameters of a 1-process run on the full batch (float64, to float tolerance), and both ranks hold
identical parameters. Covers the global quantities: SOAP's/Shampoo's preconditioners (computed from the all-reduced
gradient), Sophia's Hessian EMA (fed from the all-reduced gradient here; from the real GNB and Hutchinson estimators
below, whose rank-dependent draws are averaged across ranks inside the estimator, so ranks stay identical)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.ddp_worker import worker
from tests.optimizer_zoo import NAMES

pytestmark = pytest.mark.distributed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The tests that read it share one xdist group: under pytest-xdist (--dist loadgroup) they run on one worker, which
# spawns the 2-rank run once, instead of every worker spawning it again.
SHARES_RESULTS = pytest.mark.xdist_group("ddp-results")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(worker, args=(2, str(folder), _free_port()), nprocs=2, join=True)
    worker(0, 1, str(folder), 0)
    return [torch.load(folder / f"world2_rank{r}.pt") for r in (0, 1)], torch.load(folder / "world1_rank0.pt")


@SHARES_RESULTS
@pytest.mark.parametrize("name", NAMES)
def test_two_ranks_equal_one_process_with_the_global_batch(results, name):
    (rank0, rank1), single = results
    for p0, p1, ref in zip(rank0[name], rank1[name], single[name], strict=True):
        assert torch.equal(p0, p1), f"{name}: ranks differ"
        torch.testing.assert_close(p0, ref, rtol=1e-9, atol=1e-11)


@SHARES_RESULTS
@pytest.mark.parametrize("estimator", ["gnb_ddp_forward", "gnb_inner_forward", "hutchinson"])
def test_sophia_estimators_keep_ranks_identical(results, estimator):
    """GNB through the DDP wrapper, GNB around it (a Lightning manual step calls the inner module), Hutchinson
    (autograd.grad bypasses DDP): each rank samples its own labels/probes, the estimate is averaged across ranks
    inside the estimator, so h and the parameters are the same on both ranks."""
    (rank0, rank1), single = results
    for key in (estimator, estimator + "_hessian"):
        for a, b in zip(rank0[key], rank1[key], strict=True):
            assert torch.equal(a, b), f"{key}: ranks differ"
    assert any(h.abs().sum() > 0 for h in rank0[estimator + "_hessian"])  # the estimator did fold something in
    for a, b in zip(rank0[estimator], single[estimator], strict=True):  # same distribution, not the same draws
        assert torch.isfinite(a).all() and a.shape == b.shape


# The Lightning DDP tests read one pair of ranks (tests/ddp_fit_script.py ddp_all: the plain fit, then the global
# batch and the killed fit) and one single-process run of the same fits.
SHARES_FITS = pytest.mark.xdist_group("ddp-fits")
SCRIPT = Path(__file__).resolve().parent.parent / "ddp_fit_script.py"


def _script(mode: str, out: Path) -> subprocess.CompletedProcess:
    """tests/ddp_fit_script.py in a fresh interpreter (Lightning re-runs it for rank 1)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SCRIPT.parent.parent)}
    return subprocess.run([sys.executable, str(SCRIPT), mode, str(out)], env=env, capture_output=True, text=True,
                          timeout=300, cwd=out)


@pytest.fixture(scope="module")
def fits(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp_fits")
    killed = _script("ddp_all", out)
    assert killed.returncode != 0 and "killed after step 6" in killed.stderr, killed.stderr[-3000:]
    from tests.ddp_fit_script import main

    main("single_all", out)
    return out


@SHARES_FITS
def test_a_lightning_fit_with_strategy_ddp_matches_the_single_process_fit(fits: Path) -> None:
    """``fit`` with ``strategy=ddp, devices=2`` (gloo, Lightning re-runs the script for rank 1; each rank trains on
    its half of the global batch) against the same fit in one process: a tiny GPT with SOAP in float64."""
    ranks = [torch.load(fits / f"ddp_rank{r}.pt") for r in (0, 1)]
    single = torch.load(fits / "single_rank0.pt")
    assert ranks[0]["steps"] == single["steps"] == 8 and not ranks[0]["diverged"]
    for p0, p1, ref in zip(ranks[0]["params"], ranks[1]["params"], single["params"], strict=True):
        assert p0.dtype == torch.float64
        assert torch.equal(p0, p1)
        torch.testing.assert_close(p0, ref, rtol=1e-9, atol=1e-10)
    assert [s for s, *_ in ranks[0]["val_curve"]] == [0, 4, 8]
    for a, b in zip(ranks[0]["val_curve"], single["val_curve"], strict=True):
        assert a[1] == pytest.approx(b[1], rel=1e-9)


@SHARES_FITS
def test_ddp_with_a_global_batch_and_a_resumed_checkpoint_matches_one_process(fits: Path) -> None:
    """``trainer.global_batch=16`` over batch_size 8: 2 micro-batches per step in one process and in two (each rank
    takes 4 of each micro-batch); and a DDP fit killed after step 6 and resumed from its step-4 checkpoint by both
    ranks (a fresh command, as after a crash) ends where 8 straight single-process steps end."""
    assert (fits / "ddp" / "checkpoints" / "resume" / "last.ckpt").is_file()
    done = _script("ddp_resume", fits)
    assert done.returncode == 0, done.stderr[-3000:]
    for run, steps, vals in (("accum", 4, [0, 2, 4]), ("resume", 8, [0, 4, 8])):
        ranks = [torch.load(fits / f"ddp_scale_{run}_rank{r}.pt") for r in (0, 1)]
        single = torch.load(fits / f"single_scale_{run}_rank0.pt")
        assert ranks[0]["steps"] == single["steps"] == steps and not ranks[0]["diverged"]
        assert [s for s, *_ in ranks[0]["val_curve"]] == vals
        for p0, p1, ref in zip(ranks[0]["params"], ranks[1]["params"], single["params"], strict=True):
            assert torch.equal(p0, p1), run
            torch.testing.assert_close(p0, ref, rtol=1e-9, atol=1e-10)
