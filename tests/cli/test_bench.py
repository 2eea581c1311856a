"""``reproduce bench`` end to end on the micro parameter set with a few steps: the JSON and markdown structure, and
bad inputs. No test asserts a time."""

import json

import pytest

from common.bench.report import COLUMNS
from common.bench.shapes import SHAPE_SETS
from reproduce.cli import main


def test_shape_sets_have_the_documented_sizes():
    def count(name):
        return sum(__import__("math").prod(s) for s in SHAPE_SETS[name]), len(SHAPE_SETS[name])

    n, tensors = count("tiny")
    assert tensors == 52 and 3.2e6 < n < 3.4e6
    n, tensors = count("gpt2-small")
    assert tensors == 148 and 123e6 < n < 125e6


@pytest.mark.slow  # times every implementation
def test_bench_writes_json_and_markdown_with_every_column(tmp_path, capsys):
    code = main(["bench", "--shapes", "micro", "--optimizers", "adamw,radam", "soap", "--impl", "reference",
                 "foreach", "triton", "--steps", "2", "--warmup", "1", "--device", "cpu", "--out", str(tmp_path)])
    assert code == 0
    data = json.loads((tmp_path / "cpu-micro.json").read_text())
    assert data["shapes"] == "micro" and data["n_tensors"] == len(SHAPE_SETS["micro"]) and data["steps"] == 2
    assert data["copy_bandwidth_gbs"] > 0 and data["yardstick"]["median_ms"] > 0
    assert {"name", "device", "torch_threads", "torch"} <= set(data["hardware"])
    rows = data["rows"]
    assert rows[0]["note"].startswith("yardstick") and rows[0]["vs_fused_adamw"] == 1.0
    paired = data["yardstick"]["paired_median_ms"]
    assert set(paired) == {"adamw", "radam", "soap"} and all(ms > 0 for ms in paired.values())
    for r in rows[1:]:  # each optimizer's ratios are to the yardstick timed in its own rounds
        if r["times"] is not None:
            assert r["vs_fused_adamw"] == pytest.approx(r["times"]["median_ms"] / paired[r["optimizer"]])
    ours = {(r["optimizer"], r["impl"]) for r in rows if r["source"] == "optrepro"}
    assert {("adamw", "reference"), ("adamw", "foreach"), ("radam", "foreach"), ("soap", "batched"),
            ("soap", "reference")} <= ours
    assert any(r["source"] == "torch.optim" and r["optimizer"] == "radam" for r in rows)
    for r in rows:
        if r["times"] is None:  # triton on CPU without the interpreter, or a package that failed: said why
            assert r["note"]
            continue
        t = r["times"]
        assert t["min_ms"] <= t["median_ms"] <= t["max_ms"] and t["steps"] == 2
        assert r["state_bytes_per_param"] >= 0
        if r["bytes_per_param"] is not None:
            assert r["vs_bound"] > 0 and r["vs_fused_adamw_scaled"] > 0
    md = (tmp_path / "cpu-micro.md").read_text()
    assert "| " + " | ".join(COLUMNS) + " |" in md and "copy bandwidth" in md and "load average" in md
    assert md.count("\n| ") == len(rows) + 1
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--optimizers", "adamx"], "unknown optimizer 'adamx'"),
        (["--impl", "fused"], "unknown impl 'fused'"),
        (["--shapes", "huge"], "shapes must be one of"),
        (["--steps", "0"], "--steps and --rounds must be >= 1"),
        (["--rounds", "0"], "--steps and --rounds must be >= 1"),
    ],
)
def test_bench_bad_inputs_are_one_error_line(argv, words, capsys, tmp_path):
    assert main(["bench", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error") and words in err[0]


@pytest.mark.slow  # times every implementation
def test_bench_times_the_riemannian_optimizers_against_geoopt(tmp_path):
    code = main(["bench", "--shapes", "micro", "--optimizers", "riemannian-adam", "riemannian-sgd",
                 "riemannian-adagrad", "--steps", "2", "--warmup", "1", "--device", "cpu", "--out", str(tmp_path)])
    assert code == 0
    rows = json.loads((tmp_path / "cpu-micro.json").read_text())["rows"][1:]
    got = {(r["optimizer"], r["impl"], r["source"].split()[0]) for r in rows}
    assert got == {("riemannian-adam", "dense", "optrepro"), ("riemannian-adam", "PoincareBall", "geoopt"),
                   ("riemannian-sgd", "dense", "optrepro"), ("riemannian-sgd", "PoincareBall", "geoopt"),
                   ("riemannian-adagrad", "dense", "optrepro")}
    assert all(r["times"] is not None and r["times"]["median_ms"] > 0 for r in rows), [r["note"] for r in rows]
    adam = next(r for r in rows if r["optimizer"] == "riemannian-adam" and r["source"] == "optrepro")
    assert adam["bytes_per_param"] == 20 and adam["state_bytes_per_param"] < 8  # m per coordinate, v per row


def test_wordnet_shape_sets_are_one_embedding_table():
    assert SHAPE_SETS["wordnet-5"] == [(82_115, 5)] and SHAPE_SETS["wordnet-10"] == [(82_115, 10)]
