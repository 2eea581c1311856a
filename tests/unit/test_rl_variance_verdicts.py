"""B1-B4 verdict rules on hand-made summaries (thresholds of spec §6)."""

from papers.rl_variance.verdicts import judge_aggregation, judge_deepsea, judge_gvpo, judge_nchain


def _b1(lmc, eg, n=5):
    return {"verdict_size": 20, "seeds": n, "sizes": {"N20": {
        "lmc": {"seeds_solved": lmc, "first_success": [1] * lmc + [None] * (n - lmc), "fraction_solved_mean": 0.5},
        "egreedy": {"seeds_solved": eg, "first_success": [None] * n, "fraction_solved_mean": 0.0}}}}


def test_b1():
    assert judge_deepsea(_b1(5, 0)).status == "reproduced"
    assert judge_deepsea(_b1(4, 1)).status == "reproduced"
    assert judge_deepsea(_b1(3, 0)).status == "partially reproduced"
    assert judge_deepsea(_b1(1, 0)).status == "not reproduced"
    assert judge_deepsea(_b1(1, 2)).status == "contradicted"


def _b2(lmc, dqn, se=0.5):
    return {"n": 50, "seeds": 5,
            "best": {"lmc": {"return": lmc, "return_se": se}, "dqn": {"return": dqn, "return_se": se}}}


def test_b2():
    assert judge_nchain(_b2(8, 5)).status == "reproduced"
    assert judge_nchain(_b2(5.5, 5)).status == "partially reproduced"
    assert judge_nchain(_b2(5, 5.5)).status == "not reproduced"
    assert judge_nchain(_b2(4, 8)).status == "contradicted"


def _st(rb, se, var):
    return {"rb": rb, "b2": rb * rb, "b2_se": se, "trvar_norm": var, "trvar_rel": var}


def test_b3():
    ok = {"grpo": _st(0.3, 0.001, 1), "dapo": _st(0.05, 0.0001, 3), "drgrpo": _st(0.0, 0.001, 4),
          "deltal_a1": _st(0.0, 0.001, 1.5)}
    assert judge_aggregation({"stats": ok}).status == "reproduced"
    biased = dict(ok, deltal_a1=_st(0.2, 0.001, 1.5))
    assert judge_aggregation({"stats": biased}).status == "partially reproduced"
    assert judge_aggregation({"stats": dict(ok, deltal_a1=_st(0.0, 0.001, 5))}).status == "not reproduced"
    assert judge_aggregation({"stats": dict(ok, deltal_a1=_st(0.5, 0.001, 5))}).status == "contradicted"


def _b4(g, r):
    mus = ("on_policy", "uniform", "stale")
    return {"best": {"gvpo": {m: {"kl": v, "lr": 0.1} for m, v in zip(mus, g, strict=True)},
                     "grpo": {m: {"kl": v, "lr": 0.1} for m, v in zip(mus, r, strict=True)}}}


def test_b4():
    assert judge_gvpo(_b4((1e-4, 1e-5, 1e-5), (1.0, 0.3, 0.3))).status == "reproduced"
    assert judge_gvpo(_b4((1e-4, 0.05, 0.05), (1.0, 0.3, 0.3))).status == "partially reproduced"
    assert judge_gvpo(_b4((0.05, 0.05, 0.05), (1.0, 0.3, 0.3))).status == "not reproduced"
    assert judge_gvpo(_b4((1e-4, 0.5, 1e-5), (1.0, 0.3, 0.3))).status == "contradicted"
