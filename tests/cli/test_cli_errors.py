"""Every bad input the CLI refuses (unknown paper, claim, preset or key, malformed YAML, wrong types, values out
of range): one clear line on stderr and a non-zero exit."""

import pytest

from reproduce.cli import main
from tests.one_error import one_error_line


def test_unknown_paper_lists_valid_ones(capsys):
    line = one_error_line(capsys, ["radm"])
    assert "unknown paper 'radm'" in line and "did you mean radam" in line and "valid papers: " in line


def test_unknown_claim_lists_valid_ones(capsys):
    line = one_error_line(capsys, ["radam", "c9", "--preset", "smoke"])
    assert "unknown claim 'c9'" in line and "c1, c2, c3" in line


def test_claim_not_in_preset_names_presets_that_run_it(capsys):
    line = one_error_line(capsys, ["radam", "c3", "--preset", "cpu"])
    assert "not part of the cpu preset" in line and "gpu" in line


def test_unknown_preset(capsys):
    line = one_error_line(capsys, ["radam", "--preset", "huge"])
    assert "unknown preset 'huge'" in line and "smoke, cpu, gpu, paper" in line


def test_unknown_override_key_names_nearest(capsys):
    line = one_error_line(capsys, ["radam", "c2", "--preset", "smoke", "claims.c2.step=3"])
    assert "unknown override key 'claims.c2.step'" in line and "claims.c2.steps" in line


def test_bad_seeds(capsys):
    line = one_error_line(capsys, ["radam", "--preset", "smoke", "--seeds", "0"])
    assert "--seeds must be >= 1" in line


def test_bad_flag_is_one_line(capsys):
    line = one_error_line(capsys, ["radam", "--presett", "smoke"])
    assert "unrecognized arguments" in line


def test_missing_data_says_how_to_get_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OPTREPRO_FASHION_MNIST", str(tmp_path / "nowhere"))
    line = one_error_line(capsys, ["radam", "c3", "--preset", "smoke", f"claims.c3.data.root={tmp_path / 'nowhere'}",
                         "--out", str(tmp_path / "out")])
    assert "apt-get install dataset-fashion-mnist" in line


def test_cite_unknown_paper(capsys):
    line = one_error_line(capsys, ["cite", "sophiaa"])
    assert "unknown paper" in line


def test_paper_preset_without_cifar_says_how_to_get_it(capsys, tmp_path):
    line = one_error_line(capsys, ["radam", "--preset", "paper", f"claims.c3.data.root={tmp_path / 'none'}",
                         "--out", str(tmp_path / "out")])
    assert "CIFAR-10 not found in root" in line and "cifar-10-python.tar.gz" in line and "OPTREPRO_CIFAR10" in line


@pytest.mark.parametrize("argv", [["list"], ["cite", "radam"], ["--help"]])
def test_good_commands_exit_zero(argv, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().out


def test_list_shows_paper_claims_and_presets(capsys):
    main(["list"])
    out = capsys.readouterr().out
    assert "radam" in out and "c1" in out and "c2" in out and "[presets: smoke, cpu, gpu]" in out


def test_cite_prints_bibtex(capsys):
    main(["cite", "radam"])
    out = capsys.readouterr().out
    assert out.startswith("@inproceedings{liu2020radam") and "1908.03265" in out
