"""RAdam end to end at the smoke preset: records written, verdicts computed, plots on disk."""

import json

import pytest

from common.results.record import load_record
from common.results.table import paper_block, results_markdown
from common.results.verdict import VERDICTS
from papers.radam import PAPER
from papers.radam.verdicts import judge_accuracy, judge_lr_robustness, judge_variance
from reproduce.cli import main
from reproduce.registry import repo_root

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("radam-smoke")
    assert main(["radam", "--preset", "smoke", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("claim,judge", [("c1", judge_variance), ("c2", judge_lr_robustness),
                                         ("c3", judge_accuracy)])
def test_record_has_everything_and_its_verdict_follows_from_its_summary(smoke_run, claim, judge):
    rec = load_record(smoke_run / f"{claim}.json")
    assert rec["paper"] == "radam" and rec["claim"] == claim and rec["preset"] == "smoke"
    assert rec["seeds"] == [0, 1]
    assert rec["verdict"]["status"] in VERDICTS
    assert rec["verdict"] == judge(rec["summary"]).to_dict()
    for key in ("git_commit", "torch", "lightning", "date", "torch_threads"):
        assert key in rec["provenance"]
    assert rec["plots"]
    for plot in rec["plots"].values():
        assert (smoke_run / plot).stat().st_size > 1000
    assert rec["wall_s"] > 0 and rec["headline"]


def test_c2_runs_every_arm_lr_and_seed_with_initial_and_final_val(smoke_run):
    rec = load_record(smoke_run / "c2.json")
    runs = rec["arms"]["runs"]
    assert len(runs) == 3 * 2 * 2
    for r in runs:
        assert r["val_curve"][0][0] == 0 and r["val_curve"][-1][0] == 8
        assert r["initial_val_loss"] > 0
    assert set(rec["summary"]["spread"]) == {"adam", "adam_warmup", "radam"}


def test_c3_sweeps_on_seed0_then_reruns_best_lr(smoke_run):
    runs = load_record(smoke_run / "c3.json")["arms"]["runs"]
    assert sum(r["seed"] == 0 for r in runs) == 3 * 2
    assert sum(r["seed"] == 1 for r in runs) == 3
    assert (smoke_run / "tb").is_dir()


def test_a_diverged_arm_is_recorded_and_the_run_goes_on(tmp_path, capsys):
    code = main(["radam", "c2", "--preset", "smoke", "--seeds", "1", "--out", str(tmp_path),
                 "claims.c2.lrs=[1.0e+4]", "claims.c2.steps=6"])
    assert code == 0
    rec = load_record(tmp_path / "c2.json")
    runs = rec["arms"]["runs"]
    assert len(runs) == 3 and all(r["failed"] for r in runs)
    assert any(r["diverged"] and r["divergence_reason"] for r in runs)
    assert rec["verdict"]["status"] == "inconclusive"


def test_tables_link_record_config_and_plots(smoke_run):
    root = repo_root()
    records = [(smoke_run / f"c{i}.json", load_record(smoke_run / f"c{i}.json")) for i in (1, 2, 3)]
    md = results_markdown([(PAPER, records)], root)
    assert "arxiv.org/abs/1908.03265" in md and "github.com/LiyuanLucasLiu/RAdam" in md
    assert md.count("[record](") == 3 and "[config](papers/radam/configs/smoke.yaml)" in md
    block = paper_block(PAPER, records, root, root / "papers" / "radam")
    assert "@inproceedings{liu2020radam" in block and "![c2 lr_sweep](" in block
    json.dumps(records[0][1])
