"""rho is chosen by win rate: the smallest candidate whose late win rate lands in the band."""

from pathlib import Path

from omegaconf import OmegaConf

from common.results.context import RunContext
from papers.sophia.experiment import tune_rho


def _cfg(rhos):
    return OmegaConf.create({"rho_tuning": {"rhos": rhos, "lr": 1e-3, "steps": 30, "after": 20, "band": [0.1, 0.5]},
                             "arms": {"sophiag": {"rho": 0.05}}})


def _fake(win_by_rho, diverge=()):
    def train(lr, seed, label, steps, rho):
        trace = [(s, win_by_rho[rho] if s >= 20 else 0.9, 1e-6) for s in range(10, 31, 10)]
        return {"hessian_trace": trace, "diverged": rho in diverge}

    return train


def test_smallest_rho_inside_the_band_wins(tmp_path: Path):
    ctx = RunContext(out_dir=tmp_path, preset="smoke", seeds=[0], claim_id="s1", tuning_seeds=[1000])
    rho, probes = tune_rho(_cfg([0.05, 0.2, 1.0]), ctx, _fake({0.05: 0.03, 0.2: 0.2, 1.0: 0.45}))
    assert rho == 0.2 and probes == {"0.05": 0.03, "0.2": 0.2, "1": 0.45}


def test_closest_to_the_band_when_none_is_inside_and_diverged_probes_are_ignored(tmp_path: Path):
    ctx = RunContext(out_dir=tmp_path, preset="smoke", seeds=[0], claim_id="s1", tuning_seeds=[1000])
    rho, probes = tune_rho(_cfg([0.05, 0.2, 1.0]), ctx, _fake({0.05: 0.01, 0.2: 0.07, 1.0: 0.3}, diverge={1.0}))
    assert rho == 0.2 and probes["1"] is None


def test_a_single_candidate_is_taken_without_probing(tmp_path: Path):
    ctx = RunContext(out_dir=tmp_path, preset="paper", seeds=[0], claim_id="s1", tuning_seeds=[1000])
    assert tune_rho(_cfg([0.08]), ctx, None) == (0.08, {})
