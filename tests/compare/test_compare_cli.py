"""``reproduce compare`` end to end at the smoke preset: records, leaderboard, profile, resume, a user's own
optimizer, and bad input (one ``error:`` line each)."""

from __future__ import annotations

import json
import statistics
import textwrap

import pytest

from common.results.record import load_record
from reproduce.cli import main
from tests.one_error import one_error_line

pytestmark = pytest.mark.xdist_group("compare")  # one smoke run, shared by the module's tests on one worker




@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "smoke"
    assert main(["compare", "--preset", "smoke", "--out", str(out)]) == 0
    return out


def test_smoke_writes_a_record_per_cell_with_provenance_and_protocol(smoke_run):
    for workload in ("gpt-bytes", "fmnist-cnn"):
        for opt in ("adamw", "sophiag"):
            rec = load_record(smoke_run / workload / f"{opt}.json")
            assert rec["kind"] == "compare cell" and rec["workload"] == workload
            assert rec["optimizer"]["name"] == opt
            assert {"git_commit", "torch", "device", "date"} <= set(rec["provenance"])
            arm = rec["protocol"]["arms"][opt]
            assert arm["knob"] == "lr" and arm["chosen"] == rec["summary"]["lr"]
            assert rec["protocol"]["tuning_seeds"] == [1000] and rec["protocol"]["eval_seeds"] == [0, 1]
            phases = {r["phase"] for r in rec["runs"]}
            assert {"tune", "eval"} <= phases
            assert ("eval at 0.5T" in phases) == (opt != "adamw")  # AdamW sets the target: no shortened runs
            assert set(rec["summary"]["fractions"]) == ({"0.5", "1"} if opt != "adamw" else {"1"})
            assert rec["summary"]["opt_step"]["ratio"] > 0


def test_leaderboard_is_derived_from_the_records(smoke_run):
    board = json.loads((smoke_run / "leaderboard.json").read_text())
    for workload, w in board["workloads"].items():
        adamw = load_record(smoke_run / workload / "adamw.json")
        assert w["target"] == pytest.approx(statistics.fmean(adamw["summary"]["finals"]))
        rows = {r["optimizer"]: r for r in w["rows"]}
        assert set(rows) == {"adamw", "sophiag"}
        soph = load_record(smoke_run / workload / "sophiag.json")
        diff = statistics.fmean(soph["summary"]["finals"]) - statistics.fmean(adamw["summary"]["finals"])
        assert rows["sophiag"]["vs_adamw"]["diff"] == pytest.approx(diff)
    assert set(board["profiles"]) == {"adamw", "sophiag"}
    md = (smoke_run / "leaderboard.md").read_text()
    assert "Rankings at this scale need not transfer" in md and "| sophiag |" in md and "bracketed" in md
    assert (smoke_run / "profile.png").stat().st_size > 1000


def test_resume_reuses_finished_cells(smoke_run, capsys):
    before = json.loads((smoke_run / "leaderboard.json").read_text())["workloads"]
    assert main(["compare", "--preset", "smoke", "--out", str(smoke_run), "--resume"]) == 0
    err = capsys.readouterr().err
    assert err.count("reusing the finished cell") == 4
    assert json.loads((smoke_run / "leaderboard.json").read_text())["workloads"] == before


def test_a_users_optimizer_runs_beside_the_zoo(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_opt.py").write_text(textwrap.dedent("""
        import torch

        class HalfMomentumSGD(torch.optim.SGD):
            def __init__(self, params, lr, momentum=0.5):
                super().__init__(params, lr=lr, momentum=momentum)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    hp = tmp_path / "hp.yaml"
    hp.write_text("name: halfsgd\nfamily: sgd\nkwargs: {momentum: 0.5}\n")
    out = tmp_path / "out"
    assert main(["compare", "--preset", "smoke", "--optimizers", "adamw", "--optimizer", "my_opt:HalfMomentumSGD",
                 "--hparams", str(hp), "--workloads", "gpt-bytes", "--out", str(out)]) == 0
    rec = load_record(out / "gpt-bytes" / "halfsgd.json")
    assert rec["optimizer"]["kind"] == "user" and rec["optimizer"]["kwargs"] == {"momentum": 0.5}
    assert rec["grid"] == [0.3]  # the workload's sgd grid
    assert "| halfsgd |" in (out / "leaderboard.md").read_text()


def test_list_names_every_optimizer_and_workload(capsys):
    assert main(["compare", "--preset", "cpu", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("adamw", "sgd_nesterov", "radam", "adabelief", "mars", "soap", "shampoo", "sophiag", "spam",
                 "stablespam", "gpt-bytes", "llama-w4a4", "fmnist-cnn", "fmnist-resnet", "riemannian_adam"):
        assert name in out


@pytest.mark.parametrize("argv, expected", [
    (["--optimizers", "adamz"], "unknown optimizer(s) adamz"),
    (["--workloads", "imagenet"], "unknown workload(s) imagenet"),
    (["--preset", "huge"], "unknown compare preset 'huge'"),
    (["seeds=abc"], "seeds"),
    (["seedz=3"], "unknown override key 'seedz'"),
    (["--optimizer", "no_such_module_xyz:Opt"], "cannot import no_such_module_xyz"),
    (["--optimizer", "torch.optim"], "package.module:ClassName"),
    (["--optimizer", "torch.optim:NoSuchOpt"], "has no NoSuchOpt"),
    (["--hparams", "x.yaml"], "--hparams without a matching --optimizer"),
    (["--resume", "--out", "/nonexistent/compare"], "does not exist"),
    (["--jobs", "0"], "--jobs must be >= 1"),
])
def test_bad_input_is_one_error_line(capsys, argv, expected):
    line = one_error_line(capsys, ["compare", *([] if "--preset" in argv else ["--preset", "smoke"]), *argv])
    assert expected in line


@pytest.mark.parametrize("content, expected", [
    ("kwargs: {lr: 0.1}\n", "lr is tuned"),
    ("nmae: x\n", "unknown key(s) nmae"),
    ("name: adamw\n", "taken by the zoo"),
    ("lrs: [0.1, -1]\n", "positive numbers"),
])
def test_bad_hparams_files_are_one_error_line(tmp_path, capsys, content, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    assert expected in one_error_line(capsys, ["compare", "--preset", "smoke", "--optimizer", "torch.optim:SGD",
                                     "--hparams", str(bad)])

def test_rebuild_from_records_gives_the_same_leaderboard_and_a_page(smoke_run, tmp_path):
    from reproduce.compare.page import write_compare_page
    from reproduce.compare.runner import rebuild

    before = json.loads((smoke_run / "leaderboard.json").read_text())["workloads"]
    paths = rebuild(smoke_run, page=tmp_path / "COMPARE.md")
    assert json.loads(paths["json"].read_text())["workloads"] == before
    page = (tmp_path / "COMPARE.md").read_text()
    assert "](" in page and "profile.png" in page
    html_page = write_compare_page(smoke_run / "leaderboard.md", tmp_path, "").read_text()
    assert html_page.count("<table>") >= 3 and "<img src=" in html_page and "profile.png" in html_page
    assert "| " not in html_page  # every pipe table became an HTML table


def test_parallel_cells_give_the_same_results_as_one_process(smoke_run, tmp_path):
    out = tmp_path / "jobs2"
    assert main(["compare", "--preset", "smoke", "--workloads", "gpt-bytes", "--jobs", "2", "--out", str(out)]) == 0
    for opt in ("adamw", "sophiag"):
        one, two = (load_record(d / "gpt-bytes" / f"{opt}.json") for d in (smoke_run, out))
        assert two["summary"]["finals"] == one["summary"]["finals"]
        assert two["summary"]["fractions"] == one["summary"]["fractions"]
    rows = json.loads((out / "leaderboard.json").read_text())["workloads"]["gpt-bytes"]["rows"]
    assert {r["optimizer"] for r in rows} == {"adamw", "sophiag"}
