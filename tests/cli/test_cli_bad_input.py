"""More bad input through the CLI, generic over the paper registry: unknown claim/preset for every paper,
malformed or missing preset files and override values, truncated or corrupt dataset files, and interrupted
output folders (a partial record is never read as a finished one). Each: one ``error:`` line, non-zero exit."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from common.data.idx import write_idx
from common.results.record import write_record
from reproduce.cli import main
from reproduce.registry import get_paper, paper_ids
from tests.one_error import one_error_line

PAPERS = list(paper_ids())




@pytest.mark.parametrize("pid", PAPERS)
def test_unknown_claim_of_every_paper_lists_its_claims(capsys, pid):
    line = one_error_line(capsys, [pid, "zz9", "--preset", "smoke"])
    assert "unknown claim 'zz9'" in line
    assert ", ".join(c.id for c in get_paper(pid).claims) in line


@pytest.mark.parametrize("pid", PAPERS)
def test_unknown_preset_of_every_paper_lists_its_presets(capsys, pid):
    line = one_error_line(capsys, [pid, "--preset", "hgue"])
    assert "unknown preset 'hgue'" in line and ", ".join(get_paper(pid).presets()) in line


@pytest.mark.parametrize("pid", PAPERS)
def test_unknown_override_key_of_every_paper(capsys, pid):
    line = one_error_line(capsys, [pid, "--preset", "smoke", "trainer.no_such_key=1"])
    assert "unknown override key 'trainer.no_such_key'" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [("claims:\n  c1: {steps: [1, 2\n", "malformed YAML in"),
     ("claims:\n\tc1: 1\n", "malformed YAML in"),
     ("- just\n- a list\n", "must be a mapping at the top level"),
     ("seeds: 1\ntrainer: {}\n", "has no 'claims' section")],
)
def test_malformed_preset_file(capsys, tmp_path, text, expected):
    preset = tmp_path / "mine.yaml"
    preset.write_text(text)
    line = one_error_line(capsys, ["radam", "--preset", str(preset), "--out", str(tmp_path / "out")])
    assert expected in line
    if "malformed" in expected:
        assert str(preset) in line and "line" in line


def test_missing_preset_file(capsys, tmp_path):
    line = one_error_line(capsys, ["radam", "--preset", str(tmp_path / "absent.yaml")])
    assert "config file not found" in line and "absent.yaml" in line


def test_a_preset_file_runs_like_a_named_preset(capsys, tmp_path):
    """The path form is a feature, not only an error path: a copy of smoke.yaml runs c1."""
    preset = tmp_path / "copy.yaml"
    preset.write_text((get_paper("radam").configs_dir() / "smoke.yaml").read_text())
    assert main(["radam", "c1", "--preset", str(preset), "--out", str(tmp_path / "out"), "--seeds", "1",
                 "claims.c1.trajectories=20", "claims.c1.steps=40", "claims.c1.early=[5,10]",
                 "claims.c1.late=[30,40]"]) == 0
    assert json.loads((tmp_path / "out" / "c1.json").read_text())["complete"] is True


@pytest.mark.parametrize("override", ["claims.c2.lrs=[1e-3,", "claims.c2.model={n_layer: 1"])
def test_malformed_override_value(capsys, override):
    line = one_error_line(capsys, ["radam", "c2", "--preset", "smoke", override])
    assert "cannot parse the value of override" in line


def _fashion_dir(tmp_path, corrupt: str):
    """Four tiny Fashion-MNIST IDX files; ``corrupt`` names how one of them is broken."""
    root = tmp_path / "fm"
    root.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (n,), dtype=np.uint8))
    victim = root / "train-images-idx3-ubyte.gz"
    if corrupt == "truncated":  # a half-finished copy: valid gzip, short payload
        with gzip.open(victim, "rb") as f:
            data = f.read()
        with gzip.open(victim, "wb") as f:
            f.write(data[: len(data) // 2])
    elif corrupt == "gzip":  # a truncated .gz stream
        victim.write_bytes(victim.read_bytes()[:100])
    elif corrupt == "magic":
        with gzip.open(victim, "wb") as f:
            f.write(b"<html>not found</html>")
    elif corrupt == "missing":
        (root / "train-labels-idx1-ubyte.gz").unlink()
    return root


@pytest.mark.parametrize(("corrupt", "expected"), [("truncated", "is truncated"), ("gzip", "corrupt gzip file"),
                                                    ("magic", "is not an IDX file"),
                                                    ("missing", "Fashion-MNIST not found in root")])
def test_corrupt_dataset_files(capsys, tmp_path, monkeypatch, corrupt, expected):
    monkeypatch.delenv("OPTREPRO_FASHION_MNIST", raising=False)
    root = _fashion_dir(tmp_path, corrupt)
    line = one_error_line(capsys, ["radam", "c3", "--preset", "smoke", f"claims.c3.data.root={root}",
                         "--out", str(tmp_path / "out")])
    assert expected in line and "Fashion-MNIST" in line and "apt-get install dataset-fashion-mnist" in line


def _reference(tmp_path, body: str | None):
    ref = tmp_path / "reference" / "radam"
    ref.mkdir(parents=True)
    good = json.loads((get_paper("radam").configs_dir().parent.parent.parent / "results" / "reference" / "radam"
                       / "c1.json").read_text())
    write_record(ref / "c1.json", good)
    if body is not None:
        (ref / "c2.json").write_text(body)
    return ref.parent


@pytest.mark.parametrize(("body", "expected"), [
    ('{"paper": "radam", "claim": "c2", "summ', "truncated or corrupt"),  # killed mid-write, no atomic rename
    ('{"paper": "radam", "claim": "c2", "summary": {}}', "is incomplete"),  # never marked complete
    ('{"paper": "radam", "claim": "c2", "complete": false}', "is incomplete"),
])
def test_a_partial_record_is_never_read_as_finished(capsys, tmp_path, body, expected):
    reference = _reference(tmp_path, body)
    line = one_error_line(capsys, ["regress", "radam", "--reference", str(reference), "--out", str(tmp_path / "o")])
    assert expected in line and "c2.json" in line


def test_an_unrenamed_partial_file_is_ignored(tmp_path):
    """``write_record`` writes ``<claim>.json.partial`` then renames: a leftover .partial is not a record."""
    from common.results.record import find_records

    reference = _reference(tmp_path, None)
    (reference / "radam" / "c2.json.partial").write_text('{"complete": true')
    assert [p.name for p in find_records(reference / "radam")] == ["c1.json"]


def test_trainer_overrides_take_lightning_arguments_and_name_the_nearest(capsys):
    from reproduce.registry import get_paper
    from reproduce.run import load_preset

    cfg = load_preset(get_paper("radam"), "smoke", ["trainer.strategy=ddp", "trainer.devices=2"])
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.devices == 2
    line = one_error_line(capsys, ["radam", "--preset", "smoke", "trainer.strategi=ddp"])
    assert "unknown override key 'trainer.strategi': not a trainer argument; did you mean trainer.strategy" in line
    line = one_error_line(capsys, ["radam", "--preset", "smoke", "trainer.max_steps=3"])  # fit owns the step budget
    assert "not a trainer argument" in line


@pytest.mark.parametrize("override,expected", [
    ("claims.c2.steps=abc", "claims.c2.steps = 'abc' is not valid: the preset has a number there"),
    ("claims.c2.lrs=[0.001,-5]", "claims.c2.lrs = [0.001, -5] is not valid: it must be a non-empty list of positive"),
    ("claims.c2.steps=0", "claims.c2.steps = 0 is not valid: it must be a positive integer"),
    ("claims.c2.arms.adam.betas=[0.9,1.5]", "claims.c2.arms.adam.betas = [0.9, 1.5] is not valid"),
])
def test_a_wrong_value_is_one_error_line_before_any_claim_runs(capsys, tmp_path, override, expected):
    assert main(["radam", "--preset", "smoke", "--out", str(tmp_path), override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {err[-1].removeprefix('error: ')}"] and expected in err[-1]
    assert not list(tmp_path.glob("*.json"))  # c1 did not run first


def test_every_preset_of_every_paper_passes_the_value_checks():
    from reproduce.registry import all_papers
    from reproduce.run import load_preset

    for paper in all_papers():
        for preset in paper.presets():
            load_preset(paper, preset, [])
