"""``reproduce <paper> [claim ...] --preset gpu|paper --dry-run``: check a preset end to end before spending GPU
hours on it.

Two parts. The *plan* is computed from the unshrunk config without training: runs (a lower bound without grid
extensions, an upper bound with every allowed extension), steps per run, tokens (LM) or images (vision) per step and
in total, the parameter count of the real model (built on the ``meta`` device, so even a 1B model costs nothing) and
an estimate of the GPU-hours on one H100:

    GPU-hours = FLOPs / (989e12 FLOP/s bf16 dense peak x 0.40 assumed MFU) / 3600
    LM FLOPs = 6 x parameters x tokens; vision FLOPs = 3 x forward FLOPs per image (torch's FLOP counter) x images

Both are compute-bound estimates: small models are launch- and data-bound, so their real time is higher. Claims
whose experiments are tabular or toy (RL chains, 2-D functions) report runs and steps but no GPU estimate.

The *execution* then runs every claim on a shrunk copy of its config, so that the data, the model and every arm's
optimizer are built and stepped: 2 steps (one epoch of a few batches for epoch-based claims), one lr per arm, one
tuning and one eval seed, no grid extensions, fixture-sized data when the real data is absent, and an LM wider than
``MAX_DRY_PARAMS`` narrowed so 2 steps fit a CPU. Each claim section may add a ``dry_run:`` mapping of overrides
for what the generic shrink does not know (e.g. an RL claim's episode counts). The runs save no checkpoints (saving
is tested by the resume tests, and here it would cost more than the 2 steps). Everything it writes goes to a
temporary folder; the protocol's seed cap makes every verdict inconclusive, which is expected.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig, OmegaConf

from common.config import to_plain
from common.results.paper import Claim, Paper

H100_BF16_PEAK = 989e12  # FLOP/s, dense, SXM
ASSUMED_MFU = 0.40
MAX_DRY_PARAMS = 20_000_000  # an LM above this is narrowed for the 2-step run (its plan counts the real one)
FIXTURE_MAX_BYTES = 100_000
IMAGE_TRAIN_SIZES = {"fashion_mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000}
IMAGE_SHAPES = {"fashion_mnist": (1, 28), "cifar10": (3, 32), "cifar100": (3, 32)}
IMAGE_CLASSES = {"fashion_mnist": 10, "cifar10": 10, "cifar100": 100}


@dataclass
class ClaimPlan:
    """What a claim costs at its preset's real size (see the module docstring for the estimates)."""

    claim: str
    runs_min: int
    runs_max: int
    steps: str  # per run, as text: "2000", "40 epochs x 430", "1000 (toy)"
    unit: str  # "tokens", "images" or "" (toy / tabular)
    per_step: int | None  # tokens or images per optimizer step
    total_min: float | None  # tokens or images over every run (without / with extensions)
    total_max: float | None
    params: int | None
    flops_max: float | None
    gpu_hours_min: float | None
    gpu_hours_max: float | None
    basis: str  # how the GPU-hours were estimated, or why there is none
    notes: list[str] = field(default_factory=list)


def gpu_hours(flops: float) -> float:
    return flops / (H100_BF16_PEAK * ASSUMED_MFU) / 3600


# ---------------------------------------------------------------- counting runs

def _arms(section: Mapping[str, Any]) -> list[str]:
    arms = section.get("arms") or []
    return list(arms) if isinstance(arms, (Mapping, list)) else []


def _grid(section: Mapping[str, Any], arm: str) -> int:
    arms = section.get("arms")
    spec = arms.get(arm) if isinstance(arms, Mapping) else None
    lrs = (spec or {}).get("lrs") if isinstance(spec, Mapping) else None
    lrs = lrs if lrs is not None else section.get("lrs")
    n = len(lrs) if lrs else 1
    grid = (spec or {}).get("grid") if isinstance(spec, Mapping) else None
    if isinstance(grid, Mapping) and grid.get("values"):  # a second knob per arm (rl_variance b2)
        n *= len(grid["values"])
    return n


def count_runs(section: Mapping[str, Any], n_eval: int, n_tune: int) -> tuple[int, int, float]:
    """(runs without extensions, runs with every extension, short-run step fraction total) of a tuned claim:
    per arm, grid points x tuning seeds plus up to ``max_extensions`` points past each edge, then the chosen point
    on the eval seeds; each step claim adds 2 candidate lrs x tuning seeds + eval seeds at ``f`` x T steps."""
    arms = _arms(section)
    if not arms or not (section.get("lrs") or any(isinstance(section["arms"], Mapping)
                                                   and isinstance(section["arms"][a], Mapping)
                                                   and section["arms"][a].get("lrs") for a in arms)):
        return n_eval, n_eval, 0.0  # no tuning: one run per eval seed
    ext = int(section.get("max_extensions", 2))
    mus = len(section.get("mus") or []) if isinstance(section.get("mus"), list) and "gvpo" in arms else 1
    lo = sum((_grid(section, a) * n_tune + n_eval) * mus for a in arms)
    hi = sum(((_grid(section, a) + 2 * ext) * n_tune + n_eval) * mus for a in arms)
    short = 0.0
    step_claims = dict(section.get("step_claims") or {})
    if section.get("step_claim"):
        step_claims["_"] = section["step_claim"]
    for claim in step_claims.values():
        f = float(claim.get("f", 1.0)) if isinstance(claim, Mapping) else float(claim)
        short += (2 * n_tune + n_eval) * f
    return lo, hi, short


# ---------------------------------------------------------------- models on the meta device

def lm_vocab(section: Mapping[str, Any]) -> int:
    """The vocabulary the run builds: the preset's ``data.vocab_size``, else the byte corpus's 256."""
    data = section.get("data") or {}
    return int(data.get("vocab_size") or 256)


def lm_params(model: Mapping[str, Any], vocab: int) -> int:
    import torch

    from common.models.build import build_lm

    spec = {k: v for k, v in model.items() if k not in ("compile", "pure_bf16")}
    with torch.device("meta"):
        net = build_lm(spec, vocab)
    return sum(p.numel() for p in net.parameters())


def _vision_model(section: Mapping[str, Any], dataset: str) -> Any:
    from common.models.mlp import mlp
    from common.models.resnet import resnet
    from common.models.vgg import vgg

    model = dict(section.get("model") or {})
    channels, size = IMAGE_SHAPES[dataset]
    pad = int((section.get("data") or {}).get("pad_to") or size)
    classes = IMAGE_CLASSES[dataset]
    kind = model.get("kind", "resnet" if "depth" in model else "mlp")
    if kind == "resnet":
        return resnet(int(model["depth"]), num_classes=classes, in_channels=channels), (channels, pad)
    if kind == "vgg":
        return vgg(str(model["name"]), num_classes=classes, in_channels=channels), (channels, pad)
    if kind == "mlp" and model.get("geometric_layers"):
        from papers.vr_methods.experiment import geometric_widths

        hidden = geometric_widths(channels * size * size, classes, int(model["geometric_layers"]))
        return mlp(channels * size * size, hidden, classes), (channels, size)
    if kind == "mlp" and model.get("hidden") is not None:  # [] is a linear model
        return mlp(channels * size * size, list(model["hidden"]), classes), (channels, size)
    if kind != "mlp":  # lenet, preact_resnet, densenet, convnext, cnn: the shared builder
        from types import SimpleNamespace

        from common.models.build import build_classifier

        shape = SimpleNamespace(num_classes=classes, in_channels=channels, image_size=pad)
        return build_classifier(model, shape), (channels, pad)
    return None, (channels, size)


def vision_flops(section: Mapping[str, Any], dataset: str) -> tuple[int | None, float | None]:
    """(parameters, forward FLOPs per image) from torch's FLOP counter on the meta device; None where this
    function has no builder for the model (the plan says so)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.device("meta"):
            net, (c, s) = _vision_model(section, dataset)
            if net is None:
                return None, None
            net.eval()  # batch norm over one image refuses training mode; the FLOPs are the same
            counter = FlopCounterMode(display=False)
            with counter:
                net(torch.zeros(1, c, s, s))
    except Exception:  # noqa: BLE001 - a model this estimate cannot build: no estimate, said in the plan
        return None, None
    return sum(p.numel() for p in net.parameters()), float(counter.get_total_flops())


# ---------------------------------------------------------------- the plan

def plan_claim(claim: Claim, section: Mapping[str, Any], n_eval: int, n_tune: int) -> ClaimPlan:
    """The generic plan: an LM claim (``model.block_size``), an image claim (``epochs``), else a toy claim."""
    if claim.plan is not None:  # the claim says what its experiment runs where the common keys do not
        section = claim.plan(section)
    lo, hi, short = count_runs(section, n_eval, n_tune)
    model = section.get("model") or {}
    if isinstance(model, Mapping) and "block_size" in model:
        vocab = lm_vocab(section)
        params = lm_params(model, vocab)
        steps = int(section["steps"])
        per = int(section["batch_size"]) * int(model["block_size"])  # trainer.global_batch: set by dry_run()
        extra = 0
        rho = section.get("rho_tuning")
        if isinstance(rho, Mapping):  # Sophia's rho pre-runs, one per rho
            extra = len(rho.get("rhos") or []) * int(rho.get("steps", 0))
        t_lo = (lo * steps + short * steps + extra) * per
        t_hi = (hi * steps + short * steps + extra) * per
        notes = [f"vocabulary {vocab}"]
        return ClaimPlan(claim.id, lo + math.ceil(short), hi + math.ceil(short), str(steps), "tokens", per, t_lo, t_hi,
                         params, 6 * params * t_hi, gpu_hours(6 * params * t_lo), gpu_hours(6 * params * t_hi),
                         "6 x params x tokens", notes)
    epochs = section.get("epochs") or section.get("passes")
    if epochs:
        data = section.get("data") or {}
        dataset = str(data.get("dataset") or "fashion_mnist")
        train = IMAGE_TRAIN_SIZES.get(dataset, 60_000) - int(data.get("val_size") or 0)
        if data.get("subset"):
            train = min(train, int(data["subset"]))
        if section.get("n_examples"):
            train = int(section["n_examples"])
        bs = int(section.get("batch_size") or 1)
        # a claim's plan may add whole-set passes (e.g. snapshot passes) and images (probes) per run
        per_run = round(float(section.get("plan_passes") or epochs) * train + float(section.get("plan_extra_images")
                                                                                  or 0))
        models = section.get("models")
        if isinstance(models, list) and models:  # one arm per model (A2's model family): runs and FLOPs per model
            return _family_plan(claim, section, models, dataset, train, bs, epochs, per_run, lo, hi)
        params, fwd = vision_flops(section, dataset)
        short_imgs = short * per_run
        i_lo, i_hi = lo * per_run + short_imgs, hi * per_run + short_imgs
        if fwd is not None:
            flops = 3 * fwd * i_hi
            hours: tuple[float | None, float | None] = (gpu_hours(3 * fwd * i_lo), gpu_hours(flops))
            basis = f"3 x {_num(fwd)}FLOP forward/image x images"
        else:
            flops, hours = None, (None, None)
            basis = "no GPU estimate: no FLOP count for this model (the generic plan builds resnet/vgg/mlp)"
        return ClaimPlan(claim.id, lo + math.ceil(short), hi + math.ceil(short),
                         f"{epochs} epochs x {math.ceil(train / bs)}", "images", bs, i_lo, i_hi, params, flops,
                         *hours, basis, [f"{dataset}, {train} training images"])
    steps = section.get("steps") or section.get("env_steps") or section.get("batches") or "-"
    return ClaimPlan(claim.id, lo, hi, f"{steps}", "", None, None, None, None, None, None, None,
                     "no GPU estimate: a tabular / toy experiment that runs on the CPU")


def _family_plan(claim: Claim, section: Mapping[str, Any], models: list[Any], dataset: str, train: int, bs: int,
                 epochs: Any, per_run: int, lo: int, hi: int) -> ClaimPlan:
    """A claim whose arms are models (``section["models"]``: (name, model spec) pairs): ``lo``/``hi`` runs of
    ``per_run`` images each per model, FLOPs summed over the models; params is the largest model's."""
    flops_lo = flops_hi = 0.0
    sizes, notes = [], [f"{dataset}, {train} training images; {per_run} images per run (training, snapshot passes, "
                        "probes)"]
    for name, spec in models:
        params, fwd = vision_flops({**section, "model": spec}, dataset)
        if fwd is None:
            return ClaimPlan(claim.id, lo * len(models), hi * len(models), f"{epochs} epochs x {math.ceil(train / bs)}",
                             "images", bs, None, None, None, None, None, None,
                             f"no GPU estimate: no FLOP count for {name}", notes)
        flops_lo += 3 * fwd * lo * per_run
        flops_hi += 3 * fwd * hi * per_run
        sizes.append(params or 0)
        notes.append(f"{name}: {_num(params)} params, {_num(fwd)}FLOP forward/image, {lo}-{hi} runs")
    n = len(models)
    return ClaimPlan(claim.id, lo * n, hi * n, f"{epochs} epochs x {math.ceil(train / bs)}", "images", bs,
                     float(lo * n * per_run), float(hi * n * per_run), max(sizes), flops_hi, gpu_hours(flops_lo),
                     gpu_hours(flops_hi), "3 x forward FLOPs/image x images, summed over the model family", notes)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def _hours(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return "n/a"
    return f"{lo:.3g}" if abs(hi - lo) < 1e-12 else f"{lo:.3g}-{hi:.3g}"


def format_plan(plans: list[ClaimPlan], paper: Paper, preset: str) -> str:
    lines = [f"plan: {paper.id} --preset {preset} (unshrunk config; runs = without-with every grid extension)",
             f"  {'claim':5s} {'runs':>9s} {'steps/run':>16s} {'per step':>9s} {'total':>15s} {'params':>8s}"
             f" {'H100 GPU-h':>13s}"]
    seen: dict[str, str] = {}
    for p in plans:
        total = "-" if p.total_min is None else f"{_num(p.total_min)}-{_num(p.total_max)} {p.unit[:3]}"
        lines.append(f"  {p.claim:5s} {p.runs_min:>4d}-{p.runs_max:<4d} {p.steps:>16s} {_num(p.per_step):>9s} "
                     f"{total:>15s} {_num(p.params):>8s} {_hours(p.gpu_hours_min, p.gpu_hours_max):>13s}")
        seen.setdefault(p.basis, p.claim)
        for note in p.notes:
            lines.append(f"        {p.claim}: {note}")
    his = [p for p in plans if p.gpu_hours_max is not None]
    lo = sum(p.gpu_hours_min or 0.0 for p in his)
    hi = sum(p.gpu_hours_max or 0.0 for p in his)
    lines.append(f"  total: {sum(p.runs_min for p in plans)}-{sum(p.runs_max for p in plans)} runs, "
                 f"{_hours(lo, hi) if his else 'n/a'} GPU-hours on one H100")
    lines.append(f"  estimate: FLOPs / ({H100_BF16_PEAK / 1e12:.0f} TFLOP/s bf16 dense peak x {ASSUMED_MFU:.0%} MFU);"
                 " " + "; ".join(f"{b} ({c})" for b, c in seen.items()))
    return "\n".join(lines)


# ---------------------------------------------------------------- shrinking for the 2-step execution

def _cifar_fixture(dataset: str, root: Path) -> Path:
    """A tiny CIFAR-format folder (python pickles, random uint8 images), so the loader's real code path runs."""
    import numpy as np

    from common.data.cifar import VARIANTS

    v = VARIANTS[dataset]
    folder = root / v.folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, files in v.files.items():
        for name in files:
            n = 40 if split == "train" else 20
            batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                     v.label_key: [int(i % v.num_classes) for i in range(n)]}
            (folder / name).write_bytes(pickle.dumps(batch))
    (folder / v.meta).write_bytes(pickle.dumps({v.names_key: [f"class{i}" for i in range(v.num_classes)]}))
    return folder


def _image_data_present(dataset: str, root: Any) -> str | None:
    """None when the dataset loads as configured; else why not (the dry run then uses a fixture)."""
    if dataset not in ("cifar10", "cifar100"):
        return None
    from common.data.cifar import VARIANTS, find_cifar

    try:
        find_cifar(VARIANTS[dataset], "test", root)
    except Exception as exc:  # noqa: BLE001 - DataError or a failed download: either way the data is absent
        return str(exc).split(";")[0]
    return None


def shrink(section: Mapping[str, Any], tmp: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """A copy of a claim's section that runs in seconds (module docstring), then its ``dry_run:`` overrides."""
    s: dict[str, Any] = copy.deepcopy(dict(section))
    overrides = s.pop("dry_run", None) or {}
    s["seeds"], s["tuning_seeds"], s["max_extensions"] = 1, 1, 0
    if isinstance(s.get("lrs"), list):
        s["lrs"] = s["lrs"][:1]
    if isinstance(s.get("equal_lrs"), list):
        s["equal_lrs"] = s["equal_lrs"][:1]
    if isinstance(s.get("arms"), dict):
        for spec in s["arms"].values():
            for grid_key in ("lrs", "grid"):  # an arm's own lr grid, under either name
                if isinstance(spec, dict) and isinstance(spec.get(grid_key), list):
                    spec[grid_key] = spec[grid_key][:1]
            if isinstance(spec, dict) and isinstance(spec.get("warmup_steps"), int):  # an arm's own warmup
                spec["warmup_steps"] = min(spec["warmup_steps"], 1)
            if isinstance(spec, dict) and isinstance(spec.get("grid"), dict) and spec["grid"].get("values"):
                spec["grid"]["values"] = spec["grid"]["values"][:1]
    for key, value in (("steps", 2), ("epochs", 1), ("passes", 1), ("evals", 1), ("val_every", 1),
                       ("val_batches", 1), ("trace_points", 2), ("probes", 2), ("variance_probes", 2),
                       ("lbfgs_iters", 3), ("error_every", 1)):
        if key in s and isinstance(s[key], int):
            s[key] = min(s[key], value)
    if isinstance(s.get("rho_tuning"), dict):
        s["rho_tuning"].update(steps=2, after=1, rhos=s["rho_tuning"]["rhos"][:1])
    model = s.get("model")
    data = s.get("data") if isinstance(s.get("data"), dict) else None
    if isinstance(model, dict) and "block_size" in model:  # an LM
        if model.get("compile"):
            model["compile"] = False
            say("torch.compile off (compiling would dominate 2 steps)")
        corpus = str((data or {}).get("corpus", ""))
        if corpus.startswith("tokens:") and not Path(corpus.removeprefix("tokens:")).is_dir():
            say(f"fixture data: {corpus.removeprefix('tokens:')} not found; python-stdlib bytes "
                f"(first {FIXTURE_MAX_BYTES} bytes, vocabulary 256) instead")
            s["data"] = {"corpus": "python-stdlib", "level": "byte", "max_bytes": FIXTURE_MAX_BYTES}
        elif corpus == "python-stdlib" and data is not None:
            data["max_bytes"] = min(int(data.get("max_bytes") or FIXTURE_MAX_BYTES), FIXTURE_MAX_BYTES)
            say(f"data cut to the first {data['max_bytes']} bytes of python-stdlib")
        shrunk = []
        if int(s.get("batch_size", 2)) > 2:
            shrunk.append(f"batch_size {s['batch_size']} -> 2")
            s["batch_size"] = 2
        if int(model["block_size"]) > 32:
            shrunk.append(f"block_size {model['block_size']} -> 32")
            model["block_size"] = 32
        params = lm_params(model, lm_vocab(s))
        if params > MAX_DRY_PARAMS:
            shrunk.append(f"width d_model {model.get('d_model')} -> 64, 2 heads (the plan counts the configured "
                          "width)")
            model.update(d_model=64, n_head=2)
            model.pop("mlp_hidden", None)
        if model.get("pure_bf16"):
            model["pure_bf16"] = False
            shrunk.append("pure_bf16 off (bf16 master weights on a CPU)")
        say("shrunk for the CPU: " + ", ".join(shrunk) if shrunk else "model as configured")
    elif data is not None and "hierarchy" not in data and ("epochs" in s or "dataset" in data):  # images (not WordNet)
        bs = min(int(s.get("batch_size", 4)), 4)  # 2 steps of a few images: enough to build and run every arm
        s["batch_size"] = bs
        dataset = str(data.get("dataset") or "fashion_mnist")
        why = _image_data_present(dataset, data.get("root"))
        if why is not None:
            data["root"] = str(_cifar_fixture(dataset, tmp / "fixture"))
            say(f"fixture data: {why}; a generated {dataset}-format folder of 40 random training images instead")
            data["val_size"] = min(int(data.get("val_size") or 0), 8)
        else:
            data["val_size"] = min(int(data.get("val_size") or 0), 16) if "val_size" in data else data.get("val_size")
        data["subset"] = 2 * bs
        if "test_size" in data:
            data["test_size"] = 16
        if data.get("balanced"):
            data["subset"] = max(2 * bs, 20)
        if "full_batch_size" in s:
            s["full_batch_size"] = 2 * bs
        say(f"images: {data['subset']} training images, batch {bs} (2 steps of one epoch)")
    elif "n_examples" in s:
        s["n_examples"] = 64
        say("convex: 64 examples")
    return _merge(s, overrides)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in over.items():
        base[k] = _merge(dict(base[k]), v) if isinstance(v, Mapping) and isinstance(base.get(k), dict) else v
    return base


# ---------------------------------------------------------------- the command

def strip_dry_run(cfg: DictConfig) -> dict[str, Any]:
    """Take the claims' ``dry_run:`` mappings out of a loaded preset (no experiment reads them, and they must not
    change a run's hash), returning them by claim id."""
    found = {}
    for cid, section in cfg.claims.items():
        if isinstance(section, DictConfig) and "dry_run" in section:
            found[str(cid)] = to_plain(section.dry_run)
            del section["dry_run"]
    return found


def dry_run(paper: Paper, claims: list[Claim], cfg: DictConfig, preset: str, dry: Mapping[str, Any],
            stream: TextIO | None = None) -> int:
    """Print the plan, run every claim shrunk in a temporary folder, print ``dry run ok``; 0 on success."""
    from reproduce.run import claim_seeds, run_claims

    stream = stream or sys.stdout
    plans, measured = [], {}
    for claim in claims:
        seeds, tuning = claim_seeds(cfg, claim.id)
        section = to_plain(cfg.claims[claim.id])
        if cfg.get("trainer") and cfg.trainer.get("global_batch"):  # examples per optimizer step over all processes
            section["batch_size"] = int(cfg.trainer.global_batch)
        plan = plan_claim(claim, section, len(seeds), len(tuning))
        key = repr((claim.run.__module__, claim.run.__qualname__, section, seeds, tuning))
        if key in measured:  # run_claims judges this claim on the earlier claim's measurement: no runs of its own
            plan = ClaimPlan(claim.id, 0, 0, plan.steps, plan.unit, plan.per_step, 0, 0, plan.params, 0, 0.0, 0.0,
                             plan.basis, [f"shares {measured[key]}'s runs (same experiment and config)"])
        else:
            measured[key] = claim.id
        plans.append(plan)
    print(format_plan(plans, paper, preset), file=stream, flush=True)
    trainer = to_plain(cfg.trainer) if isinstance(cfg.get("trainer"), DictConfig) else {}
    import torch

    for key in ("strategy", "devices", "num_nodes", "global_batch", "accumulate_grad_batches", "compile_model"):
        if trainer.pop(key, None) is not None:
            print(f"dry run: trainer.{key} dropped (one process, 2 small steps)", file=stream)
    if not torch.cuda.is_available() and trainer.pop("precision", None) is not None:
        print("dry run: trainer.precision dropped (no CUDA device)", file=stream)
    with tempfile.TemporaryDirectory(prefix="optrepro-dry-run-") as tmp:
        shrunk = {}
        for claim in claims:
            section = {**to_plain(cfg.claims[claim.id]), "dry_run": dict(dry.get(claim.id) or {})}
            shrunk[claim.id] = shrink(section, Path(tmp),
                                      lambda msg, cid=claim.id: print(f"dry run {cid}: {msg}", file=stream))
        small = OmegaConf.create({"seeds": 1, "tuning_seeds": 1, "trainer": trainer, "claims": shrunk})
        failed = []
        try:  # together, so that claims sharing one experiment share its runs, as in a real run
            runs = run_claims(paper, claims, small, preset, Path(tmp) / "out", stream=stream, checkpoints=False)
        except Exception:  # noqa: BLE001 - find which claims fail: one at a time
            runs = []
            for claim in claims:
                try:
                    runs += run_claims(paper, [claim], small, preset, Path(tmp) / "out", stream=stream,
                                       checkpoints=False)
                except Exception as exc:  # noqa: BLE001 - the point of a dry run: report it, go on
                    failed.append(f"{claim.id}: {type(exc).__name__}: {exc}")
        for r in runs:
            record = json.loads(r.record_path.read_text())
            tuned = {a: t for a, t in ((record.get("protocol") or {}).get("arms") or {}).items()
                     if isinstance(t, Mapping) and "chosen" in t}
            unchosen = [a for a, t in tuned.items() if t["chosen"] is None]
            if tuned and len(unchosen) == len(tuned):  # nothing measured a selection metric: a config or data bug
                failed.append(f"{r.claim.id}: no arm chose a value: every tuning run failed or gave no selection "
                              "metric (e.g. no validation split)")
                continue
            if unchosen:  # some arms diverged in 2 steps at their first lr: a result, but worth a look
                print(f"dry run {r.claim.id}: note: arm(s) {', '.join(unchosen)} chose no value (diverged or no "
                      f"metric in 2 steps at the first lr)", file=stream)
            print(f"dry run {r.claim.id}: ran every arm ({r.wall_s:.1f} s; verdict {r.verdict.label}: "
                  "one seed of 2 steps, not evidence)", file=stream)
    if failed:
        for line in failed:
            print(f"dry run FAILED {line}", file=stream, flush=True)
        return 1
    print("dry run ok", file=stream, flush=True)
    return 0
