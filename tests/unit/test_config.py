import pytest
from omegaconf import OmegaConf

from common.config import apply_overrides, flat_keys, load_yaml
from common.errors import ConfigError

BASE = OmegaConf.create({"seeds": 3, "claims": {"c2": {"steps": 400, "lrs": [1e-3], "arms": {"adam": {"eps": 1e-8}}}}})


def test_overrides_merge_with_yaml_types():
    cfg = apply_overrides(BASE, ["claims.c2.steps=10", "claims.c2.lrs=[0.1,0.2]", "claims.c2.arms.adam.eps=1e-6"])
    assert cfg.claims.c2.steps == 10 and list(cfg.claims.c2.lrs) == [0.1, 0.2]
    assert cfg.claims.c2.arms.adam.eps == pytest.approx(1e-6)
    assert BASE.claims.c2.steps == 400  # the base is not mutated


def test_unknown_override_key_names_the_nearest_valid_key():
    with pytest.raises(ConfigError, match=r"unknown override key 'claims.c2.step'.*claims.c2.steps"):
        apply_overrides(BASE, ["claims.c2.step=3"])


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(BASE, ["claims.c2.steps"])


def test_flat_keys_lists_inner_and_leaf_keys():
    keys = flat_keys(BASE)
    assert {"seeds", "claims", "claims.c2", "claims.c2.steps", "claims.c2.arms.adam.eps"} <= set(keys)


def test_malformed_yaml_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: 3\nclaims: {c1: [1, 2}\n")
    with pytest.raises(ConfigError, match=r"malformed YAML in .*bad.yaml at line 2"):
        load_yaml(bad)


def test_yaml_must_be_a_mapping(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(bad)
