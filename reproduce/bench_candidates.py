"""What ``reproduce bench`` times: our optimizers in each implementation, and the implementations a user would
pick instead (torch.optim, pytorch-optimizer, adabelief-pytorch) when they are installed.

``BYTES_PER_PARAM`` is the memory traffic of one fused step per fp32 parameter, reads plus writes, which sets the
bandwidth bound: AdamW/RAdam/AdaBelief read p, g, m, v and write p, m, v (28 B); MARS-AdamW also reads and writes
last_grad, and its per-tensor clip reads g and last_grad once more (44 B); MARS-Lion has no v (36 B); SophiaG reads
p, g, m, h and writes p, m (24 B); SPAM's spike clip is elementwise (28 B); Stable-SPAM reads g twice more for
AdaClip's max and AdaGN's norm (36 B). SOAP is matrix work, not bandwidth-bound: no bound.

``step-compiled`` is what torch.optim leaves compilation to: our optimizer with ``impl="foreach"`` and
``opt.step = torch.compile(opt.step)`` (default options). Our optimizers keep ``step`` as a Python int, which
dynamo specialises on (it keys the buckets), so every step recompiles until ``torch._dynamo.config.recompile_limit``
(8) is hit, after which the step runs eagerly (foreach) with the failed guards checked on every call. SophiaG's
update does not use the step count, so its compiled step keeps one graph. Every optimizer's ``step`` goes through
torch.optim's one ``wrapper`` code object, whose cache the recompile limit counts, so the candidate resets dynamo's
caches when it is built.

The Riemannian optimizers (``riemannian-*``) treat every tensor as a product of Poincaré balls (one per row) and are
timed against geoopt 0.5.1 where it is installed (the ``wordnet-5`` and ``wordnet-10`` shape sets are the paper's
embedding tables). Their v is one value per row, so a fused RADAM step reads p, g, m and writes p, m (20 B), RSGD
and RADAGRAD read p, g and write p (12 B). A tensor with a row outside the unit ball cannot be a ball parameter, so
they run by default only on the wordnet shape sets; asked for on a GPT shape set, they are reported as failed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass

import torch

from common.kernels import IMPLS, NATIVE
from common.kernels.dispatch import native_library, native_unavailable
from common.kernels.stablespam import NATIVE_SOURCE
from common.optim.adamw import AdamW
from papers.adabelief import AdaBelief
from papers.mars import MARS
from papers.radam import RAdam
from papers.riemannian_adam import PoincareBall, RiemannianAdagrad, RiemannianAdam, RiemannianSGD, tag_manifold
from papers.soap import SOAP
from papers.sophia import SophiaG
from papers.stable_spam import SPAM, StableSPAM

__all__ = ["ADAMW_BYTES", "BYTES_PER_PARAM", "OPTIMIZERS", "STEP_COMPILED", "Candidate", "alternatives", "ours",
           "yardstick"]

Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
BYTES_PER_PARAM: dict[str, int | None] = {
    "adamw": 28, "radam": 28, "adabelief": 28, "mars-adamw": 44, "mars-lion": 36, "sophiag": 24, "spam": 28,
    "stablespam": 36, "soap": None, "riemannian-adam": 20, "riemannian-sgd": 12, "riemannian-adagrad": 12,
}
RIEMANNIAN = ("riemannian-adam", "riemannian-sgd", "riemannian-adagrad")
ADAMW_BYTES = 28
OPTIMIZERS = tuple(BYTES_PER_PARAM)
SOAP_IMPLS = ("reference", "batched")
STEP_COMPILED = "step-compiled"  # impl="foreach" with opt.step = torch.compile(opt.step)
NATIVE_SOURCES = {"stablespam": NATIVE_SOURCE}  # the optimizers with a C kernel (impl="native") on CPU


@dataclass(frozen=True)
class Candidate:
    optimizer: str
    impl: str
    source: str
    make: Factory
    note: str = ""


def _ours(name: str, impl: str) -> Factory:
    makers: dict[str, Factory] = {
        "adamw": lambda ps: AdamW(ps, lr=1e-3, weight_decay=0.1, impl=impl),
        "radam": lambda ps: RAdam(ps, lr=1e-3, weight_decay=0.1, impl=impl),
        "adabelief": lambda ps: AdaBelief(ps, lr=1e-3, weight_decay=0.1, impl=impl),
        "mars-adamw": lambda ps: MARS(ps, lr=3e-3, weight_decay=0.1, impl=impl),
        "mars-lion": lambda ps: MARS(ps, lr=3e-4, weight_decay=0.1, mars_type="lion", impl=impl),
        "sophiag": lambda ps: SophiaG(ps, lr=1e-4, weight_decay=0.1, bs=5120, impl=impl),
        "spam": lambda ps: SPAM(ps, lr=1e-3, weight_decay=0.1, impl=impl),
        "stablespam": lambda ps: StableSPAM(ps, lr=1e-3, weight_decay=0.1, total_T=10_000, impl=impl),
        "soap": lambda ps: SOAP(ps, lr=3e-3, precondition_frequency=10, impl=impl),
        "riemannian-adam": lambda ps: RiemannianAdam(_ball(ps), lr=1e-3),
        "riemannian-sgd": lambda ps: RiemannianSGD(_ball(ps), lr=1e-3),
        "riemannian-adagrad": lambda ps: RiemannianAdagrad(_ball(ps), lr=1e-3),
    }
    return makers[name]


def _step_compiled(name: str) -> Factory:
    """``opt.step = torch.compile(opt.step)`` over our foreach implementation."""
    def make(ps: list[torch.Tensor]) -> torch.optim.Optimizer:
        opt = _ours(name, "foreach")(ps)
        # Every optimizer's step runs through torch.optim's one `wrapper` code object, whose dynamo cache and
        # recompile limit would carry over from the previous optimizer's row: start each row from an empty cache.
        torch._dynamo.reset()
        opt.step = torch.compile(opt.step)  # type: ignore[method-assign]
        return opt
    return make


def _ball(ps: list[torch.Tensor]) -> list[torch.Tensor]:
    """The bench's tensors tagged as Poincaré-ball parameters (rows must lie inside the unit ball)."""
    return [tag_manifold(p, PoincareBall()) for p in ps]


def _geoopt_ball(ps: list[torch.Tensor]) -> list[torch.Tensor]:
    """geoopt ManifoldParameters sharing the bench's tensors and gradients."""
    import geoopt

    out = []
    for p in ps:
        q = geoopt.ManifoldParameter(p.detach(), manifold=geoopt.PoincareBall())
        q.grad = p.grad
        out.append(q)
    return out


def ours(name: str, impls: tuple[str, ...]) -> list[Candidate]:
    """Our optimizer ``name`` in each requested implementation (SOAP: reference and batched; ``native`` only for
    the optimizers in :data:`NATIVE_SOURCES`)."""
    if name in RIEMANNIAN:  # one implementation: the closed-form per-row step
        return [Candidate(name, "dense", "optrepro", _ours(name, "reference"))]
    if name == "soap":
        chosen = [i for i in SOAP_IMPLS if i in impls or (i == "batched" and set(impls) - {"reference"})]
    else:
        chosen = [i for i in IMPLS if i in impls]
    out = [Candidate(name, impl, "optrepro", _ours(name, impl)) for impl in chosen]
    if NATIVE in impls and name in NATIVE_SOURCES:
        out.append(Candidate(name, NATIVE, "optrepro", _ours(name, NATIVE), _native_note(NATIVE_SOURCES[name])))
    if STEP_COMPILED in impls and name != "soap":
        out.append(Candidate(name, STEP_COMPILED, "optrepro", _step_compiled(name),
                             "impl='foreach', opt.step = torch.compile(opt.step)"))
    return out


def _native_note(source: str) -> str:
    """Empty when the C kernel builds here, else why not and what ran instead."""
    if native_library(source) is not None:
        return ""
    return f"C kernel unavailable ({native_unavailable(source)}): ran compiled"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _quiet(factory: Factory) -> Factory:
    def make(ps: list[torch.Tensor]) -> torch.optim.Optimizer:
        with contextlib.redirect_stdout(io.StringIO()):  # adabelief-pytorch prints banners
            return factory(ps)
    return make


def alternatives(name: str) -> list[Candidate]:
    """The implementations of the same method a user would reach for, those installed here."""
    out: list[Candidate] = []
    if name == "adamw":
        out += [Candidate(name, "foreach", "torch.optim", lambda ps: torch.optim.AdamW(
                    ps, lr=1e-3, weight_decay=0.1, foreach=True)),
                Candidate(name, "for-loop", "torch.optim", lambda ps: torch.optim.AdamW(
                    ps, lr=1e-3, weight_decay=0.1, foreach=False))]
    if name == "radam":
        out += [Candidate(name, "foreach", "torch.optim", lambda ps: torch.optim.RAdam(
                    ps, lr=1e-3, weight_decay=0.1, decoupled_weight_decay=True, foreach=True),
                          "rectifies from t=6 like ours; decays every step"),
                Candidate(name, "for-loop", "torch.optim", lambda ps: torch.optim.RAdam(
                    ps, lr=1e-3, weight_decay=0.1, decoupled_weight_decay=True, foreach=False))]
    if _installed("pytorch_optimizer"):
        import pytorch_optimizer as po

        po_makers: dict[str, Factory] = {
            "radam": lambda ps: po.RAdam(ps, lr=1e-3, weight_decay=0.1),
            "adabelief": lambda ps: po.AdaBelief(ps, lr=1e-3, weight_decay=0.1, rectify=True),
            "mars-adamw": lambda ps: po.MARS(ps, lr=3e-3, weight_decay=0.1),
            "mars-lion": lambda ps: po.MARS(ps, lr=3e-4, weight_decay=0.1, mars_type="lion"),
            "spam": lambda ps: po.SPAM(ps, lr=1e-3, weight_decay=0.1),
            "stablespam": lambda ps: po.StableSPAM(ps, lr=1e-3, weight_decay=0.1, t_max=10_000),
            "soap": lambda ps: po.SOAP(ps, lr=3e-3, precondition_frequency=10),
        }
        if name in po_makers:
            out.append(Candidate(name, "default", "pytorch-optimizer", po_makers[name]))
    if name in ("riemannian-adam", "riemannian-sgd") and _installed("geoopt"):
        import geoopt

        geo: Factory = (  # geoopt writes weight decay into p.grad: keep it 0 so every candidate sees the same grads
            (lambda ps: geoopt.optim.RiemannianAdam(_geoopt_ball(ps), lr=1e-3)) if name == "riemannian-adam"
            else (lambda ps: geoopt.optim.RiemannianSGD(_geoopt_ball(ps), lr=1e-3)))
        out.append(Candidate(name, "PoincareBall", f"geoopt {geoopt.__version__}", geo))
    if name == "adabelief" and _installed("adabelief_pytorch"):
        import adabelief_pytorch

        out.append(Candidate(name, "official package", "adabelief-pytorch", _quiet(
            lambda ps: adabelief_pytorch.AdaBelief(ps, lr=1e-3, weight_decay=0.1, print_change_log=False))))
    return out


def yardstick(device: torch.device) -> tuple[str, Factory]:
    """torch's fused AdamW where this torch has it on ``device``, else its foreach AdamW (the label says which)."""
    try:
        probe = torch.zeros(2, device=device, requires_grad=True)
        probe.grad = torch.zeros_like(probe)
        torch.optim.AdamW([probe], fused=True).step()
    except (RuntimeError, TypeError):
        return "torch.optim.AdamW(foreach=True) (fused unavailable)", lambda ps: torch.optim.AdamW(
            ps, lr=1e-3, weight_decay=0.1, foreach=True)
    return "torch.optim.AdamW(fused=True)", lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.1, fused=True)
