"""The comparison's parts without training: every zoo optimizer steps every workload's network, the
steps-to-target and profile arithmetic, and the presets' sections are valid."""

from __future__ import annotations

import math

import pytest
import torch

from common.compare.leaderboard import profiles, speedup, steps_ratio, workload_rows
from common.compare.workloads import build_model
from reproduce.compare.runner import load_compare_preset, presets
from reproduce.compare.zoo import ZOO

SMOKE = load_compare_preset("smoke")


@pytest.mark.parametrize("workload", list(SMOKE.workloads))
def test_every_zoo_optimizer_steps_every_workload(workload):
    section = SMOKE.workloads[workload]
    for name, entry in ZOO.items():
        assert entry.applies(section) is None, name
        model = build_model(section)
        before = [p.detach().clone() for p in model.parameters()]
        opt = entry.factory(float(section.lrs[entry.family][0]), section)(model.parameters())
        for _ in range(8):  # the official RAdam leaves the first five steps without an update
            for p in model.parameters():
                p.grad = torch.randn_like(p) * 1e-2
            opt.step()
        moved = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
        assert moved > 0, name
        assert all(torch.isfinite(p).all() for p in model.parameters()), name


def test_every_preset_loads_and_names_known_optimizers():
    assert {"smoke", "cpu", "gpu"} <= set(presets())
    for p in presets():
        cfg = load_compare_preset(p)
        assert set(cfg.optimizers) <= set(ZOO)
        assert set(cfg.default_workloads) <= set(cfg.workloads)


def _cell(name, finals, fractions=None, lr=1e-3):
    mean = sum(finals) / len(finals)
    fr = {"1": finals, **(fractions or {})}
    return {"optimizer": {"label": name}, "grid": [lr], "wall_s": 1.0,
            "summary": {"lr": lr, "bracketed": True, "finals": finals, "mean": mean, "se": 0.01, "diverged": 0,
                        "n": len(finals), "fractions": fr, "run_step_ms": 2.0}}


def test_steps_to_target_interpolates_in_log_steps_and_bounds():
    target = 2.0
    # reaches the target between 0.5 T (2.2) and 0.75 T (1.8) on every seed: halfway in log steps
    cell = _cell("x", [1.5, 1.5, 1.5], {"0.5": [2.2, 2.2, 2.2], "0.75": [1.8, 1.8, 1.8]})
    st = steps_ratio(cell, target)
    assert st["geo_mean"] == pytest.approx(math.sqrt(0.5 * 0.75))
    assert not st["upper_bound"] and st["never_reached"] == 0
    fast = _cell("y", [1.5, 1.5, 1.5], {"0.5": [1.9, 1.9, 1.9], "0.75": [1.7, 1.7, 1.7]})
    assert steps_ratio(fast, target)["upper_bound"]  # the shortest runs already reach it: a bound
    slow = _cell("z", [2.5, 2.5, 1.9], {"0.5": [3.0, 3.0, 3.0], "0.75": [2.7, 2.7, 2.7]})
    st = steps_ratio(slow, target)
    assert st["never_reached"] == 2 and st["median"] == math.inf


def test_rows_profiles_and_speedups():
    cells = {"adamw": _cell("adamw", [2.0, 2.1, 1.9]),
             "fast": _cell("fast", [1.6, 1.7, 1.5], {"0.5": [2.2, 2.2, 2.2], "0.75": [1.8, 1.8, 1.8]}),
             "slow": _cell("slow", [2.4, 2.5, 2.3], {"0.5": [3.0, 3.0, 3.0], "0.75": [2.7, 2.7, 2.7]})}
    target, rows = workload_rows(cells)
    assert target == pytest.approx(2.0)
    assert [r["optimizer"] for r in rows] == ["fast", "adamw", "slow"]
    by = {r["optimizer"]: r for r in rows}
    assert by["fast"]["vs_adamw"]["diff"] == pytest.approx(-0.4)
    assert speedup(by["fast"]) == pytest.approx(1 / math.sqrt(0.5 * 0.75))
    assert speedup(by["adamw"]) == 1.0 and speedup(by["slow"]) is None
    prof = profiles({"w1": rows, "w2": rows}, {"w3": {"slow": "does not apply"}})
    assert prof["fast"]["rho"]["1"] == 1.0
    assert prof["adamw"]["rho"]["1"] == 0.0 and prof["adamw"]["rho"]["2"] == 1.0
    assert prof["slow"]["rho"]["4"] == 0.0 and prof["slow"]["not_applicable"] == ["w3"]


def test_the_committed_leaderboard_is_what_its_records_give():
    """COMPARE.md and results/compare/cpu/leaderboard.md are rebuilt from the cell records, never typed in."""
    from common.compare.leaderboard import leaderboard_markdown
    from reproduce.compare.runner import cells_meta, load_cells
    from reproduce.registry import repo_root

    out = repo_root() / "results" / "compare" / "cpu"
    cells = load_cells(out)
    assert len(cells) == 3 and all(len(c) == 10 for c in cells.values())
    boards = {w: workload_rows(c) for w, c in cells.items()}
    prof = profiles({w: rows for w, (_, rows) in boards.items()}, {})
    md = leaderboard_markdown(boards, prof, cells_meta(cells, "cpu"), "profile.png")
    assert md == (out / "leaderboard.md").read_text()
    page = (repo_root() / "COMPARE.md").read_text()
    assert page == md.replace("](profile.png)", "](results/compare/cpu/profile.png)")
