"""Which implementation runs an update: validation of ``impl=``, ``auto`` resolution, and bucketing of tensors.

Every elementwise rule in :mod:`common.kernels` has the same four implementations:

* ``reference``: a loop over tensors calling the per-tensor definition (the readable maths);
* ``foreach``: ``torch._foreach_*`` multi-tensor ops written in the reference's operation order (on CPU torch runs
  them as the same per-tensor ops, so the results are bit-identical to the reference);
* ``compiled``: ``torch.compile`` of the fused per-tensor maths (one pass over memory instead of one per op); when
  the compiler cannot run (no C++ toolchain, unsupported platform: :func:`compiler_works` probes it once per device
  type) it warns once and runs ``foreach``;
* ``triton``: one Triton launch per bucket covering every tensor through pointer/offset tables (CUDA; on CPU only
  under ``TRITON_INTERPRET=1``, the mode the CI tests use).

A rule may also have ``native``: a hand-written C kernel for contiguous float32/float64 CPU tensors, built at first
use with the system C compiler (:func:`native_library`) and called through ctypes on the tensors' addresses.
Stable-SPAM has one: its per-tensor reductions feeding scalar EMAs are where Inductor's CPU code is slowest (about
3x fused AdamW per byte moved on ``reproduce bench --shapes tiny``, the C kernel about 1x). Where it cannot run
(other dtypes or devices, a rule without one, no compiler) ``native`` runs ``compiled``, which itself falls back to
``foreach`` without a compiler.

``compiled`` is not ``torch.compile(opt.step)``: the optimizers keep each tensor's step as a Python int, which dynamo
specialises on, so a compiled ``step`` recompiles every step until dynamo's recompile limit and then runs eagerly
(``reproduce bench --impl step-compiled`` measures it: the foreach step's time). Here only the fused per-tensor
maths is compiled, with every step-dependent value passed as data (:func:`scalar_tensor`), so one graph per (rule,
flags, dtypes) serves every step and shape.

``auto`` resolves per device: ``triton`` on CUDA when Triton is importable, else ``foreach``; it never picks an
implementation that fails. On CPU it stays ``foreach`` although ``compiled`` and ``native`` are faster: foreach is
bit-identical to the reference, needs no compiler and compiles nothing. A bucket is a run of tensors that one
multi-tensor call can take: same device, dtypes and step count.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CHOICES",
    "IMPLS",
    "NATIVE",
    "available_impls",
    "buckets",
    "check_impl",
    "default_impl",
    "flat_ok",
    "native_library",
    "native_unavailable",
    "resolve_impl",
    "triton_available",
    "using",
]

IMPLS = ("reference", "foreach", "compiled", "triton")  # every rule has these
NATIVE = "native"  # some rules (Stable-SPAM): a C kernel for CPU tensors; elsewhere it runs compiled
CHOICES = (*IMPLS, NATIVE, "auto")
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
    if impl == NATIVE and device.type != "cpu":
        return "compiled"
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


@functools.cache
def compiler_works(device_type: str) -> bool:
    """Whether ``torch.compile`` (Inductor) can build and run code for tensors on ``device_type`` here: an explicit
    probe, run once per device type, compiling a one-op function (it needs a C++ toolchain on CPU and a supported
    Python and platform). False after warning once; ``impl='compiled'`` then runs foreach."""
    try:
        probe = torch.compile(_probe, fullgraph=True, dynamic=False)
        ok = bool(torch.equal(probe(torch.ones(2, device=device_type)), torch.full((2,), 3.0, device=device_type)))
        why = "" if ok else "the probe computed a wrong value"
    except Exception as err:  # whatever the compiler raises: this call's only job is to find out
        ok, why = False, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    if not ok:
        warnings.warn(f"impl='compiled' unavailable on {device_type} ({why}); running foreach", RuntimeWarning,
                      stacklevel=2)
    return ok


def _probe(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1


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
    fused: bool = True,
    native: BucketFn | None = None,
) -> None:
    """Run one rule over every tensor: bucket by (device, param dtype, grad dtype, step), resolve ``impl`` per
    bucket, and call that implementation with the bucket's operand lists (``operands[0]`` params, ``[1]`` grads,
    then state lists, ``None`` for an operand the configuration does not use) and its step. ``fused=False`` runs
    foreach where compiled, triton or native would run: for a step that needs what only the unfused forms compute
    (the optimizers' per-tensor statistics). ``native``: the rule's C kernel, if it has one (else compiled runs).

    The fused implementations walk tensors as flat arrays, so non-contiguous tensors go to ``foreach``; empty ones
    go there too (they have nothing to update and would only specialise a compiled graph).
    """
    params, grads = operands[0], operands[1]
    assert params is not None and grads is not None
    keys = [(p.device, p.dtype, g.dtype, steps[i]) for i, (p, g) in enumerate(zip(params, grads, strict=True))]
    table = {"reference": reference, "foreach": foreach, "compiled": compiled, "triton": triton,
             NATIVE: native or compiled}
    for (device, _, _, step), idx in buckets(keys).items():
        chosen = resolve_impl(impl, device)
        if not fused and chosen in ("compiled", "triton", NATIVE):
            chosen = "foreach"
        sub = _select(operands, idx)
        if chosen in ("compiled", "triton", NATIVE):
            ok = [j for j in range(len(idx))
                  if sub[0][j].numel() > 0 and flat_ok(*(op[j] for op in sub if op is not None))]  # type: ignore[index]
            if len(ok) < len(idx):
                foreach(_select(sub, [j for j in range(len(idx)) if j not in set(ok)]), step)
            if not ok:
                continue
            sub = _select(sub, ok)
        if chosen == "foreach" and device.type == "cpu":
            for part in _cache_sized(sub[0]):  # type: ignore[arg-type]
                foreach(_select(sub, part), step)
            continue
        table[chosen](sub, step)


DEFAULT_GROUP = 16  # tensors per compiled call: one call per GROUP tensors, the last group padded with dummies
GROUP = DEFAULT_GROUP  # what run_compiled uses; the test suite lowers it (smaller graphs compile faster)


CPU_CHUNK = 1 << 17  # elements: a few operands of this size stay in a core's L2


def _cache_sized(params: list[torch.Tensor]) -> list[list[int]]:
    """Consecutive runs of tensors with at most :data:`CPU_CHUNK` elements together (a larger tensor alone).

    On CPU torch runs a foreach op as a loop of per-tensor ops, so foreach over a whole model makes one pass over
    every tensor per op and the working set falls out of cache; the per-tensor reference is faster. Running foreach
    over cache-sized runs keeps each run's operands hot across its ops and still batches the many small tensors.
    """
    parts: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, p in enumerate(params):
        n = p.numel()
        if current and size + n > CPU_CHUNK:
            parts.append(current)
            current, size = [], 0
        current.append(i)
        size += n
    if current:
        parts.append(current)
    return parts


def run_compiled(name: str, fn: Callable[..., Any], ops: Operands, scal: torch.Tensor, foreach: BucketFn,
                 step: int, **flags: Any) -> None:
    """Run the per-tensor ``fn(*operands, scal, **flags)`` compiled, :data:`GROUP` tensors per call (a call costs
    tens of microseconds of guards, too much to pay once per tensor); foreach if :func:`compiler_works` says the
    compiler cannot run on this device.

    Tensors go in as flat non-view aliases whose sizes are marked dynamic (each its own symbol, so equal sizes in a
    group do not specialise the graph), and the last group is padded with dummies, so one graph per (rule, flags,
    dtypes) serves every shape, rank and tensor count. Step-dependent values travel in ``scal`` as data; flags only
    switch operands on or off. Single-element tensors go to foreach.
    """
    if not compiler_works(ops[0][0].device.type):  # type: ignore[index]
        foreach(ops, step)
        return
    key = name + "".join(f":{k}={v}" for k, v in sorted(flags.items()))
    small, groups, new = _prepared(key, ops)
    if small:
        foreach(_select(ops, small), step)
    each = _each_compiled()
    if not new:  # this bucket ran before: its graph is in the cache, the call cannot compile
        for _, lists in groups:
            each(fn, *lists, scal, **flags)
        return
    # Every rule's graphs are entries of _each's one cache (the rule's fn is an argument, guarded by identity; a hit
    # moves its entry to the front): allow one entry per (rule, flags, dtypes) in use, not dynamo's default 8 per code
    # object. The test suite, running every rule and flag in every dtype in one process, needs about a hundred. Only
    # a new bucket's first call can compile, so only it pays for the patch (0.2 ms a step on CPU).
    with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT, accumulated_recompile_limit=_RECOMPILE_LIMIT):
        for _, lists in groups:
            each(fn, *lists, scal, **flags)


_RECOMPILE_LIMIT = 1024


# The compiled calls' argument lists (flat aliases plus padding) by bucket. Building them costs a few microseconds
# a tensor, a third of a small model's step on CPU; params and state stay put between steps, so they are reused.
# An entry holds its tensors' storages, so it is dropped as soon as the bucket's first param or first state tensor is
# freed (a model or optimizer thrown away), and at most _PREPARED_SIZE buckets are kept.
_PREPARED: OrderedDict[tuple, tuple[list[int], list[tuple[list[int], list]]]] = OrderedDict()
_PREPARED_SIZE = 16


def _prepared(key: str, ops: Operands) -> tuple[list[int], list[tuple[list[int], list]], bool]:
    """(indices of single-element tensors, for foreach; [(indices, argument lists)] per compiled call; whether the
    entry is new)."""
    cache_key = (key, tuple(None if op is None else tuple((t.data_ptr(), t.numel()) for t in op) for op in ops))
    hit = _PREPARED.get(cache_key)
    if hit is not None:
        _PREPARED.move_to_end(cache_key)
        return (*hit, False)
    n = len(ops[0])  # type: ignore[arg-type]
    small = [i for i in range(n) if ops[0][i].numel() <= 1]  # type: ignore[index]
    big = [i for i in range(n) if i not in set(small)]
    groups = []
    for start in range(0, len(big), GROUP):
        idx = big[start:start + GROUP]
        lists = [None if op is None else [_flat(op[i]) for i in idx] + _dummies(op[0], GROUP - len(idx))
                 for op in ops]
        groups.append((idx, lists))
    entry = (small, groups)
    _PREPARED[cache_key] = entry
    for op in (ops[0], ops[2] if len(ops) > 2 else None):
        if op:
            weakref.finalize(op[0], _PREPARED.pop, cache_key, None)
    if len(_PREPARED) > _PREPARED_SIZE:
        _PREPARED.popitem(last=False)
    return (*entry, True)


def _dynamic(t: torch.Tensor) -> torch.Tensor:
    """``t`` (1-D) with its size marked dynamic, unless it is 1 (a per-tensor scalar operand stays static)."""
    if t.numel() > 1:
        torch._dynamo.maybe_mark_dynamic(t, 0)
    return t


def _dummies(like: torch.Tensor, count: int) -> list[torch.Tensor]:
    """Padding operands: 2 elements, or 1 for a per-tensor scalar operand (0-d, e.g. Stable-SPAM's EMAs), so that
    a dummy has the shape class of the real operands and the padded group reuses their graph."""
    size = 1 if like.ndim == 0 else 2
    return [_dynamic(torch.ones(size, dtype=like.dtype, device=like.device)) for _ in range(count)]


def _each(fn: Callable[..., Any], *args: Any, **flags: Any) -> None:
    """``fn`` applied tensor by tensor to lists of operands: what gets compiled (one graph for a whole group)."""
    *lists, scal = args
    for i in range(len(lists[0])):
        fn(*(None if op is None else op[i] for op in lists), scal, **flags)


@functools.cache
def _each_compiled() -> Callable[..., Any]:
    return torch.compile(_each, dynamic=True, fullgraph=True)


def _flat(t: torch.Tensor) -> torch.Tensor:
    """A 1-D tensor on ``t``'s storage that is not a view (``t`` is contiguous), its size marked dynamic: dynamo
    guards on a view's base shape, so ``t.view(-1)`` would compile one graph per rank and shape; this compiles one
    per dtype. Writes through it do not bump ``t``'s autograd version counter (an optimizer step is outside autograd
    anyway). Always a new tensor object, even for a 1-D ``t``: the cache of prepared arguments must not keep ``t``
    itself alive."""
    return _dynamic(torch.empty(0, dtype=t.dtype, device=t.device).set_(t.untyped_storage(), t.storage_offset(),
                                                                        (t.numel(),), (1,)))


NATIVE_FLAGS = ("-O2", "-fopenmp-simd", "-fno-math-errno", "-fPIC", "-shared")
_native_why: dict[str, str] = {}


@functools.cache
def native_library(source: str) -> ctypes.CDLL | None:
    """The C file ``source`` built into a shared library and loaded, or None after warning once (why:
    :func:`native_unavailable`), when there is no compiler or it fails.

    Built once per (source text, compiler, flags, CPU) into a cache folder ($OPTREPRO_NATIVE_CACHE, else
    ``optrepro_native_<user>`` in the temp folder, as Inductor keeps its own), for this CPU (``-march=native``,
    retried without it for a compiler that lacks it): under a second for a kernel file. The compiler is $CC, else
    ``cc``, ``gcc`` or ``clang`` on the PATH (Inductor needs one on CPU too)."""
    try:
        return ctypes.CDLL(str(_built(Path(source))))
    except Exception as err:  # no compiler, a failed build, an unloadable library: whatever it is, fall back
        why = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        _native_why[source] = why
        warnings.warn(f"impl='native' unavailable ({why}); running compiled", RuntimeWarning, stacklevel=2)
        return None


def native_unavailable(source: str) -> str | None:
    """Why :func:`native_library` could not build ``source`` (None if it did or was not asked)."""
    return _native_why.get(source)


def _built(source: Path) -> Path:
    cc = shlex.split(os.environ.get("CC", "")) or [next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), "")]
    if not cc[0]:
        raise RuntimeError("no C compiler found (set CC)")
    text = source.read_bytes()
    cpu = ""
    with contextlib.suppress(OSError):  # the CPU's features decide what -march=native emits
        cpu = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    key = hashlib.sha256(b"\0".join(x.encode() if isinstance(x, str) else x for x in
                                     (text, " ".join(cc + list(NATIVE_FLAGS)), sys.platform, cpu))).hexdigest()[:16]
    folder = _cache_folder()
    lib = folder / f"{source.stem}-{key}.so"
    if lib.exists():
        return lib
    errors = []
    for march in (["-march=native"], []):
        tmp = folder / f"{lib.name}.{os.getpid()}.tmp"
        done = subprocess.run([*cc, *NATIVE_FLAGS, *march, "-o", str(tmp), str(source)], capture_output=True,
                              text=True, timeout=120)
        if done.returncode == 0:
            os.replace(tmp, lib)  # atomic: a concurrent build of the same key writes the same file
            return lib
        tmp.unlink(missing_ok=True)
        lines = done.stderr.strip().splitlines()
        errors.append(next((x for x in lines if "error" in x), lines[0] if lines else f"exit {done.returncode}"))
    raise RuntimeError(f"{cc[0]} failed: {errors[-1]}")


def _cache_folder() -> Path:
    """$OPTREPRO_NATIVE_CACHE, else a folder of this user's in the temp folder (one owned by someone else is not
    used: a fresh private one is)."""
    env = os.environ.get("OPTREPRO_NATIVE_CACHE")
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    user = "".join(c for c in os.environ.get("USER", "") or str(os.getuid() if hasattr(os, "getuid") else "")
                   if c.isalnum() or c in "-_")
    folder = Path(tempfile.gettempdir()) / f"optrepro_native_{user}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if hasattr(os, "getuid") and folder.stat().st_uid != os.getuid():
        return Path(tempfile.mkdtemp(prefix="optrepro_native_"))
    return folder


def scalar_tensor(values: Sequence[float], device: torch.device) -> torch.Tensor:
    """Hyperparameters as one float64 tensor: compiled graphs take them as data, so changing them never recompiles."""
    return torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
