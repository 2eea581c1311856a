"""Which implementation runs an update: validation of ``impl=``, ``auto`` resolution, and bucketing of tensors.

Every elementwise rule in :mod:`common.kernels` has the same four implementations:

* ``reference``: a loop over tensors calling the per-tensor definition (the readable maths);
* ``foreach``: ``torch._foreach_*`` multi-tensor ops written in the reference's operation order (on CPU torch runs
  them as the same per-tensor ops, so the results are bit-identical to the reference);
* ``compiled``: ``torch.compile`` of the fused per-tensor maths (one pass over memory instead of one per op); when
  the compiler cannot run (no C++ toolchain, unsupported platform) it warns once and runs ``foreach``;
* ``triton``: one Triton launch per bucket covering every tensor through pointer/offset tables (CUDA; on CPU only
  under ``TRITON_INTERPRET=1``, the mode the CI tests use).

``auto`` resolves per device: ``triton`` on CUDA when Triton is importable, else ``foreach``; it never picks an
implementation that fails. A bucket is a run of tensors that one multi-tensor call can take: same device, dtypes
and step count.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

__all__ = [
    "CHOICES",
    "IMPLS",
    "available_impls",
    "buckets",
    "check_impl",
    "default_impl",
    "flat_ok",
    "resolve_impl",
    "triton_available",
    "using",
]

IMPLS = ("reference", "foreach", "compiled", "triton")
CHOICES = (*IMPLS, "auto")
ENV_VAR = "OPTREPRO_IMPL"

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("optrepro_impl", default=None)


def check_impl(value: object) -> str:
    """``value`` if it names an implementation (or ``auto``), else ValueError naming the argument."""
    if value not in CHOICES:
        raise ValueError(f"impl must be one of {list(CHOICES)}, got {value!r}")
    return value  # type: ignore[return-value]


def default_impl() -> str:
    """What an optimizer built with ``impl=None`` uses: the :func:`using` context, else $OPTREPRO_IMPL, else auto."""
    forced = _forced.get()
    if forced is not None:
        return forced
    return check_impl(os.environ.get(ENV_VAR, "auto"))


@contextlib.contextmanager
def using(impl: str) -> Iterator[None]:
    """Optimizers constructed inside this block with ``impl=None`` use ``impl`` (tests run every impl this way)."""
    token = _forced.set(check_impl(impl))
    try:
        yield
    finally:
        _forced.reset(token)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.cache
def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:  # ImportError, or a broken install raising at import
        return False
    return True


def triton_available(device: torch.device) -> bool:
    """Triton kernels can run on ``device``: CUDA with Triton installed, or any device under TRITON_INTERPRET=1."""
    if not _triton_importable():
        return False
    return device.type == "cuda" or (device.type == "cpu" and _interpreting())


def available_impls(device: torch.device | str = "cpu") -> tuple[str, ...]:
    """The implementations that can run on ``device`` here (``compiled`` is listed; it falls back if it cannot)."""
    device = torch.device(device)
    return tuple(i for i in IMPLS if i != "triton" or triton_available(device))


def resolve_impl(impl: str, device: torch.device) -> str:
    """The concrete implementation for tensors on ``device``; an explicit ``triton`` that cannot run raises."""
    if impl == "auto":
        return "triton" if device.type == "cuda" and triton_available(device) else "foreach"
    if impl == "triton" and not triton_available(device):
        why = ("Triton is not installed" if not _triton_importable()
               else f"Triton runs on CUDA, the tensors are on {device} (set TRITON_INTERPRET=1 to interpret on CPU)")
        raise RuntimeError(f"impl='triton' cannot run: {why}; use impl='auto' to pick what can")
    return impl


def flat_ok(*tensors: torch.Tensor) -> bool:
    """All contiguous: a fused kernel may then walk them as flat arrays with one index."""
    return all(t.is_contiguous() for t in tensors)


def buckets(keys: Sequence[Any]) -> dict[Any, list[int]]:
    """Indices grouped by key, first-seen order (the key holds device, dtypes and step)."""
    out: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return out


_compile_failed: set[str] = set()


def compile_or_none(name: str, fn: Callable[..., Any]) -> Callable[..., Any] | None:
    """``torch.compile(fn)`` (dynamic shapes), or None after warning once if the compiler is unavailable here."""
    if name in _compile_failed:
        return None
    try:
        return torch.compile(fn, dynamic=True, fullgraph=True)
    except Exception as err:  # RuntimeError on unsupported Python/platform
        _compile_failed.add(name)
        warnings.warn(f"impl='compiled' unavailable ({type(err).__name__}: {err}); running foreach", RuntimeWarning,
                      stacklevel=3)
        return None


def compile_failed(name: str, err: Exception) -> bool:
    """Record that compiling ``name`` failed and warn once; False if the error is not a compiler failure."""
    text = f"{type(err).__name__}: {err}"
    if not any(w in text for w in ("Inductor", "inductor", "compile", "Compile", "C++", "cpp", "Dynamo", "dynamo")):
        return False
    if name not in _compile_failed:
        _compile_failed.add(name)
        warnings.warn(f"impl='compiled' failed for {name} ({text.splitlines()[0]}); running foreach instead",
                      RuntimeWarning, stacklevel=3)
    return True


def is_compile_failed(name: str) -> bool:
    return name in _compile_failed


Operands = list[list[torch.Tensor] | None]
BucketFn = Callable[[Operands, int], None]


def _select(ops: Operands, idx: Sequence[int]) -> Operands:
    return [None if op is None else [op[i] for i in idx] for op in ops]


def run(
    impl: str,
    name: str,
    operands: Operands,
    steps: Sequence[int],
    *,
    reference: BucketFn,
    foreach: BucketFn,
    compiled: BucketFn,
    triton: BucketFn,
) -> None:
    """Run one rule over every tensor: bucket by (device, param dtype, grad dtype, step), resolve ``impl`` per
    bucket, and call that implementation with the bucket's operand lists (``operands[0]`` params, ``[1]`` grads,
    then state lists, ``None`` for an operand the configuration does not use) and its step.

    The fused implementations walk tensors as flat arrays, so non-contiguous tensors go to ``foreach``; empty ones
    go there too (they have nothing to update and would only specialise a compiled graph).
    """
    params, grads = operands[0], operands[1]
    assert params is not None and grads is not None
    keys = [(p.device, p.dtype, g.dtype, steps[i]) for i, (p, g) in enumerate(zip(params, grads, strict=True))]
    table = {"reference": reference, "foreach": foreach, "compiled": compiled, "triton": triton}
    for (device, _, _, step), idx in buckets(keys).items():
        chosen = resolve_impl(impl, device)
        sub = _select(operands, idx)
        if chosen in ("compiled", "triton"):
            ok = [j for j in range(len(idx))
                  if sub[0][j].numel() > 0 and flat_ok(*(op[j] for op in sub if op is not None))]  # type: ignore[index]
            if len(ok) < len(idx):
                foreach(_select(sub, [j for j in range(len(idx)) if j not in set(ok)]), step)
            if not ok:
                continue
            sub = _select(sub, ok)
        table[chosen](sub, step)


def run_compiled(name: str, fn: Callable[..., Any], ops: Operands, scal: torch.Tensor, foreach: BucketFn,
                 step: int, **flags: Any) -> None:
    """Call the compiled per-tensor ``fn(*flat operands, scal, **flags)`` on each tensor; foreach if compiling fails.

    One compiled function per (rule, flags), shapes dynamic, so a model's tensors share one graph per dtype. Flags
    are only structural switches (an operand present or not); step-dependent choices travel in ``scal`` as data.
    Single-element tensors go to foreach (dynamic shapes specialise size 1, which would cost a compilation).
    """
    key = name + "".join(f":{k}={v}" for k, v in sorted(flags.items()))
    compiled = _compiled_fn(key, fn)
    n = len(ops[0])  # type: ignore[arg-type]
    small = [i for i in range(n) if ops[0][i].numel() <= 1]  # type: ignore[index]
    if compiled is None or small:
        foreach(_select(ops, range(n) if compiled is None else small), step)
        if compiled is None:
            return
    # A graph per dtype and rank, for each (rule, flags): more than dynamo's default limit of 8 in a test session.
    with torch._dynamo.config.patch(recompile_limit=64, accumulated_recompile_limit=4096):
        for i in range(n):
            if ops[0][i].numel() <= 1:  # type: ignore[index]
                continue
            try:
                compiled(*(None if op is None else _flat(op[i]) for op in ops), scal, **flags)
            except Exception as err:  # Inductor needs a working C++ compiler; fall back once, loudly
                if not compile_failed(key, err):
                    raise
                foreach(_select(ops, [j for j in range(i, n) if ops[0][j].numel() > 1]), step)  # type: ignore
                return


def _flat(t: torch.Tensor) -> torch.Tensor:
    """A 1-D tensor on ``t``'s storage that is not a view (``t`` is contiguous): dynamo guards on a view's base
    shape, so ``t.view(-1)`` would compile one graph per rank and shape; this compiles one per dtype. Writes through
    it do not bump ``t``'s autograd version counter (an optimizer step is outside autograd anyway)."""
    if t.ndim == 1:
        return t
    return torch.empty(0, dtype=t.dtype, device=t.device).set_(t.untyped_storage(), t.storage_offset(),
                                                               (t.numel(),), (1,))


_COMPILED: dict[str, Callable[..., Any]] = {}


def _compiled_fn(name: str, fn: Callable[..., Any]) -> Callable[..., Any] | None:
    if is_compile_failed(name):
        return None
    if name not in _COMPILED:
        # A fresh code object per key: dynamo keeps its cache (and recompile limit) on the code object.
        clone = types.FunctionType(fn.__code__.replace(co_name=f"{fn.__name__}_{len(_COMPILED)}"), fn.__globals__,
                                   fn.__name__, fn.__defaults__, fn.__closure__)
        clone.__kwdefaults__ = fn.__kwdefaults__
        compiled = compile_or_none(name, clone)
        if compiled is None:
            return None
        _COMPILED[name] = compiled
    return _COMPILED[name]


def scalar_tensor(values: Sequence[float], device: torch.device) -> torch.Tensor:
    """Hyperparameters as one float64 tensor: compiled graphs take them as data, so changing them never recompiles."""
    return torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
