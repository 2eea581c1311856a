"""What ``reproduce bench`` times: our optimizers in each implementation, and the implementations a user would
pick instead (torch.optim, pytorch-optimizer, adabelief-pytorch) when they are installed.

``BYTES_PER_PARAM`` is the memory traffic of one fused step per fp32 parameter, reads plus writes, which sets the
bandwidth bound: AdamW/RAdam/AdaBelief read p, g, m, v and write p, m, v (28 B); MARS-AdamW also reads and writes
last_grad, and its per-tensor clip reads g and last_grad once more (44 B); MARS-Lion has no v (36 B); SophiaG reads
p, g, m, h and writes p, m (24 B); SPAM's spike clip is elementwise (28 B); Stable-SPAM reads g twice more for
AdaClip's max and AdaGN's norm (36 B). SOAP is matrix work, not bandwidth-bound: no bound.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Callable
from dataclasses import dataclass

import torch

from common.kernels import IMPLS
from common.optim.adamw import AdamW
from papers.adabelief import AdaBelief
from papers.mars import MARS
from papers.radam import RAdam
from papers.soap import SOAP
from papers.sophia import SophiaG
from papers.stable_spam import SPAM, StableSPAM

__all__ = ["ADAMW_BYTES", "BYTES_PER_PARAM", "OPTIMIZERS", "Candidate", "alternatives", "ours", "yardstick"]

Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
BYTES_PER_PARAM: dict[str, int | None] = {
    "adamw": 28, "radam": 28, "adabelief": 28, "mars-adamw": 44, "mars-lion": 36, "sophiag": 24, "spam": 28,
    "stablespam": 36, "soap": None,
}
ADAMW_BYTES = 28
OPTIMIZERS = tuple(BYTES_PER_PARAM)
SOAP_IMPLS = ("reference", "batched")


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
    }
    return makers[name]


def ours(name: str, impls: tuple[str, ...]) -> list[Candidate]:
    """Our optimizer ``name`` in each requested implementation (SOAP: reference and batched)."""
    if name == "soap":
        chosen = [i for i in SOAP_IMPLS if i in impls or (i == "batched" and set(impls) - {"reference"})]
    else:
        chosen = [i for i in IMPLS if i in impls]
    return [Candidate(name, impl, "optrepro", _ours(name, impl)) for impl in chosen]


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
