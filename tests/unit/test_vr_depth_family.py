"""A2 over a model family (the paper preset's dvr networks): end to end at a smoke size through the CLI (one arm
per network, shallow to deep, batch norm frozen around the probes, transform locking), the judge and headline
keyed by network, the family parser, and the dry-run plan's per-network FLOP estimate."""

import io
import json

import pytest
import torch
from omegaconf import OmegaConf

from common.config import load_yaml
from common.errors import ConfigError
from reproduce.dry_run import plan_claim
from reproduce.registry import get_paper
from reproduce.run import run_claims


def test_a2_model_family_runs_end_to_end_at_smoke_size(tmp_path):
    paper = get_paper("vr_methods")
    cfg = load_yaml(paper.configs_dir() / "smoke.yaml")
    cfg.claims = {"a2": {**OmegaConf.to_container(cfg.claims.a2), "model_family": ["resnet-small", "lenet"],
                         "data": {"root": None, "val_size": 100, "subset": 120, "balanced": True},
                         "batch_size": 32, "probes": 2, "epochs": 2, "augment": True, "momentum": 0.9,
                         "weight_decay": 1e-4, "lr_milestones": [1]}}
    out = tmp_path / "out"
    runs = run_claims(paper, [paper.claim("a2")], cfg, "smoke", out, stream=io.StringIO())
    assert [r.claim.id for r in runs] == ["a2"]
    rec = json.loads((out / "a2.json").read_text())
    s = rec["summary"]
    assert s["depths"] == ["lenet", "resnet-small"]  # ordered shallow to deep, not as listed
    assert [n["params"] for n in s["networks"]] == [44_878, 68_498]  # 1x28x28 inputs: LeNet's fc1 sees 16x4x4
    assert all(s["ratio"][n] is not None and s["ratio"][n] > 0 for n in s["depths"])
    assert {r["arm"] for r in rec["arms"]["runs"]} == {"lenet", "resnet-small"}
    assert rec["verdict"] == paper.claim("a2").judge(s).to_dict()
    assert rec["headline"].startswith("SVRG/SGD variance ratio at the end of epoch 1, shallow to deep: lenet ")
    assert "ratio by network (shallow to deep): lenet:" in rec["verdict"]["reasons"][0]


def test_family_probes_leave_batchnorm_running_stats_to_training():
    from papers.vr_methods.depth import train_probed

    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28), torch.arange(64) % 4
    cfg = OmegaConf.create({"lr": 0.0, "batch_size": 16, "epochs": 1, "fractions": [0.5, 1.0], "probes": 2})
    from common.models import lenet

    net = lenet(4, 1, 28)
    bn = net.features[1]
    out = train_probed(net, x, y, cfg, seed=0)
    # lr 0: the parameters never move, so only the 4 training forwards may have updated the running stats
    assert int(bn.num_batches_tracked) == 4
    assert [p["step"] for p in out] == [1, 3] and all(p["ratio"] is not None for p in out)


def test_family_members_names_mappings_and_errors():
    from papers.vr_methods.depth import family_members

    cfg = OmegaConf.create({"model_family": ["resnet110", "lenet", {"name": "tiny", "depth": 7,
                                                                     "model": {"kind": "lenet"}}]})
    assert [(n, d) for n, d, _ in family_members(cfg)] == [("lenet", 5), ("tiny", 7), ("resnet110", 110)]
    with pytest.raises(ConfigError, match="unknown network"):
        family_members({"model_family": ["vgg"]})
    with pytest.raises(ConfigError, match="lacks"):
        family_members({"model_family": [{"name": "x"}]})


def test_paper_preset_plan_counts_every_network_of_the_family():
    paper = get_paper("vr_methods")
    section = OmegaConf.to_container(load_yaml(paper.configs_dir() / "paper.yaml").claims.a2)
    plan = plan_claim(paper.claim("a2"), section, 3, 2)
    assert plan.runs_min == plan.runs_max == 4 * 3
    assert plan.params == 1_730_426  # the largest network, resnet110
    assert plan.gpu_hours_max is not None and 0.05 < plan.gpu_hours_max < 1.0
    assert [n.split(":")[0] for n in plan.notes[1:]] == ["lenet", "resnet-small", "densenet-40-36", "resnet110"]
