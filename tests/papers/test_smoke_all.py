"""Every paper's smoke preset end to end: a complete record per claim, its verdict recomputable from its
summary, provenance, plots on disk, and table rows that link everything."""

import pytest

from common.config import load_yaml
from common.results.record import load_record
from common.results.table import paper_block, results_markdown
from common.results.verdict import VERDICTS
from reproduce.registry import all_papers, repo_root

pytestmark = pytest.mark.smoke

CASES = [(p, c) for p in all_papers()
         for c in p.claims if c.id in load_yaml(p.configs_dir() / "smoke.yaml").get("claims", {})]


def test_every_paper_has_every_preset_and_smoke_covers_every_cpu_claim():
    for paper in all_papers():
        assert paper.presets()[:4] == ["smoke", "cpu", "gpu", "paper"], paper.id
        cpu = set(load_yaml(paper.configs_dir() / "cpu.yaml").claims)
        smoke = set(load_yaml(paper.configs_dir() / "smoke.yaml").claims)
        assert cpu <= smoke, f"{paper.id}: smoke preset misses {cpu - smoke}"


@pytest.mark.parametrize("paper,claim", CASES, ids=[f"{p.id}-{c.id}" for p, c in CASES])
def test_record_is_complete_and_its_verdict_follows_from_its_summary(smoke_run, paper, claim):
    out = smoke_run(paper.id)
    rec = load_record(out / f"{claim.id}.json")
    assert rec["paper"] == paper.id and rec["claim"] == claim.id and rec["preset"] == "smoke"
    assert rec["seeds"] and rec["seeds"] == list(range(len(rec["seeds"])))
    assert rec["verdict"]["status"] in VERDICTS
    assert rec["verdict"] == claim.judge(rec["summary"]).to_dict()
    assert rec["headline"] == claim.headline(rec["summary"])
    for key in ("git_commit", "git_dirty", "torch", "lightning", "date", "torch_threads", "device"):
        assert key in rec["provenance"]
    assert rec["plots"]
    for plot in rec["plots"].values():
        assert (out / plot).stat().st_size > 1000
    assert rec["wall_s"] > 0
    protocol = rec["protocol"]
    if protocol.get("kind") == "no tuning":
        assert protocol["reason"]
    else:
        assert not set(protocol["tuning_seeds"]) & set(protocol["eval_seeds"])
        assert protocol["eval_seeds"] == rec["seeds"] and protocol["selection"]
        assert "cap" in protocol and "test" in protocol and protocol["cap"] == rec["verdict"]["cap"]
        for arm in protocol["arms"].values():
            assert {"grid", "extensions", "bracketed", "chosen", "scores", "diverged_eval"} <= set(arm)


@pytest.mark.parametrize("paper", all_papers(), ids=lambda p: p.id)
def test_tables_link_paper_code_records_configs_and_plots(smoke_run, paper):
    out = smoke_run(paper.id)
    root = repo_root()
    records = [(p, load_record(p)) for p in sorted(out.glob("*.json"))]
    md = results_markdown([(paper, records)], root)
    assert paper.arxiv_url in md and paper.code_url in md
    assert md.count("[record](") == len(records)
    assert f"[config](papers/{paper.id}/configs/smoke.yaml)" in md
    block = paper_block(paper, records, root, root / "papers" / paper.id)
    assert paper.bibtex.strip() in block and "![" in block
