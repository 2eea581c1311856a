"""SOAP with the semantics of the authors' released code (nikhilvyas/SOAP, commit a1e5535, ``soap.py``).

The maths lives once, in small per-tensor functions (:func:`_soap_init`, :func:`_soap_update` and the projection,
factor and refresh helpers they call): the readable definition that batched or fused variants must match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import ParamsT

from common.kernels.dispatch import check_impl, default_impl
from common.optim.base import CheckedOptimizer
from common.optim.linalg import eigh_with_fallback
from common.optim.precision import state_dtype
from common.optim.validation import Check, bool_checks, check_choice, check_real, validate_group
from papers.soap.batched import soap_update_batched
from papers.soap.layout import Layout, from_layout, to_layout
from papers.soap.preconditioned import Slot, restore_state, shared_checks, warn_eigh_retries

__all__ = ["DATA_FORMATS", "SOAP"]

DATA_FORMATS = ("channels_first", "channels_last")
_FLAGS = ("merge_dims", "precondition_1d", "normalize_grads", "correct_bias", "freeze_basis", "precise")
# Per-tensor keys of the official state that are hyperparameters; we read them from the group (see deviations).
_OFFICIAL_STATE_HYPERPARAMETERS = ("precondition_frequency", "shampoo_beta")

def _project(t: torch.Tensor, bases: list[Slot], layout: Layout, *, back: bool) -> torch.Tensor:
    """Q_1^T x_1 ... Q_k^T x_k t (``back=False``) or Q_1 ... Q_k t (``back=True``): the official tensordot chain.

    Each step contracts the leading dim with a basis (or, for an identity side, moves it to the end), so after all
    dims the tensor is back in its own order.
    """
    shape = t.shape
    x = to_layout(t, layout)
    for q in bases:
        if isinstance(q, torch.Tensor):
            x = torch.tensordot(x, q, dims=([0], [1 if back else 0]))
        else:
            x = x.permute(*range(1, x.ndim), 0)
    return from_layout(x, shape, layout)


def _new_factors(grad: torch.Tensor, layout: Layout, precondition_1d: bool) -> list[Slot]:
    """Zero k x k factors for the sides with k <= max_precond_dim, ``[]`` elsewhere (official ``init_preconditioner``).

    1-D tensors get one factor only with ``precondition_1d``. An empty tensor gets ``[]`` on every side.
    """
    kwargs = {"dtype": grad.dtype, "device": grad.device}
    if grad.numel() == 0:
        return [[] for _ in grad.shape]
    if grad.ndim == 1:
        n = grad.shape[0]
        return [torch.zeros(n, n, **kwargs) if precondition_1d and n <= layout.max_dim else []]
    shape = to_layout(grad, layout).shape
    return [torch.zeros(k, k, **kwargs) if k <= layout.max_dim else [] for k in shape]


def _update_factors(grad: torch.Tensor, factors: list[Slot], shampoo_beta: float, layout: Layout) -> None:
    """GG[i] <- lerp(GG[i], G_(i) G_(i)^T, 1 - shampoo_beta): the mode-i Gram matrix, no bias correction."""
    g = to_layout(grad, layout)
    for idx, factor in enumerate(factors):
        if isinstance(factor, torch.Tensor):
            others = [d for d in range(g.ndim) if d != idx]
            factor.lerp_(torch.tensordot(g, g, dims=(others, others)), 1.0 - shampoo_beta)


def _initial_bases(
    factors: list[Slot], *, jitter: float, rounding: torch.dtype, freeze_basis: bool
) -> tuple[list[Slot], int]:
    """Q from eigh(GG + jitter I), columns in descending eigenvalue order (official ``get_orthogonal_matrix``).

    eigh runs in the factor's own dtype on the factor rounded to ``rounding``. The official code rounds with
    ``.float()`` and adds ``1e-30 * eye`` made in the default dtype, which must be float64 for float64 params (see
    :class:`SOAP`'s precision notes): the sum promotes back to float64, so their eigh is float64 on float32 values.
    Returns the bases and how many factors needed the float64 retry. With ``freeze_basis`` every basis is the
    identity (a test switch).
    """
    bases: list[Slot] = []
    retries = 0
    for factor in factors:
        if not isinstance(factor, torch.Tensor):
            bases.append([])
        elif freeze_basis:
            bases.append(torch.eye(factor.shape[0], dtype=factor.dtype, device=factor.device))
        else:
            rounded = factor.to(rounding).to(factor.dtype)
            _, vectors, retried = eigh_with_fallback(rounded, jitter=jitter)
            retries += int(retried)
            bases.append(torch.flip(vectors, [1]))
    return bases, retries


def _refresh_bases(
    factors: list[Slot], bases: list[Slot], exp_avg_sq: torch.Tensor, layout: Layout, work_dtype: torch.dtype
) -> None:
    """One power-iteration step plus QR per side, in ``work_dtype`` (official ``get_orthogonal_matrix_QR``).

    Per side: estimate eigenvalues as diag(Q^T L Q), sort them descending, permute Q's columns and V's entries along
    that dim with the same order (V is re-ordered, never rotated), then Q <- qr(L Q).Q. ``bases`` and ``exp_avg_sq``
    are updated in place.
    """
    v = to_layout(exp_avg_sq, layout)
    permuted = False
    for ind, (factor, basis) in enumerate(zip(factors, bases, strict=True)):
        if not isinstance(factor, torch.Tensor):
            continue
        assert isinstance(basis, torch.Tensor)
        m = factor.to(work_dtype)
        o = basis.to(work_dtype)
        est_eig = torch.diag(o.T @ m @ o)
        sort_idx = torch.argsort(est_eig, descending=True)
        v = v.index_select(ind, sort_idx)
        permuted = True
        q, _ = torch.linalg.qr(m @ o[:, sort_idx])
        bases[ind] = q.to(factor.dtype)
    if permuted:
        exp_avg_sq.copy_(from_layout(v, exp_avg_sq.shape, layout))


def _soap_init(
    grad: torch.Tensor,
    *,
    layout: Layout,
    precondition_1d: bool,
    shampoo_beta: float,
    jitter: float,
    rounding: torch.dtype,
    freeze_basis: bool,
) -> tuple[list[Slot], list[Slot], int]:
    """The first call on a tensor: factors from G, bases by eigh, and nothing else (no update, no decay).

    ``grad`` is in the state dtype; ``rounding`` as in :func:`_initial_bases`. Returns (GG, Q, number of float64
    eigh retries).
    """
    factors = _new_factors(grad, layout, precondition_1d)
    _update_factors(grad, factors, shampoo_beta, layout)
    bases, retries = _initial_bases(factors, jitter=jitter, rounding=rounding, freeze_basis=freeze_basis)
    return factors, bases, retries


def _soap_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    factors: list[Slot],
    bases: list[Slot],
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    shampoo_beta: float,
    eps: float,
    weight_decay: float,
    refresh: bool,
    layout: Layout,
    normalize_grads: bool,
    correct_bias: bool,
    work_dtype: torch.dtype,
) -> None:
    """One SOAP step on one tensor after its first call, in place; the reference definition.

    ``step`` is t *after* the increment (1 on the first real step). The state is held in the compute dtype
    (``exp_avg.dtype``); a low-precision ``param`` is updated in that dtype and copied back. ``exp_avg`` (M) and
    ``exp_avg_sq`` (V) live in the eigenbasis ``bases``; ``refresh`` runs the QR refresh after the factor update.
    Every expression follows the official operation order.
    """
    compute_dtype = exp_avg.dtype
    if grad.dtype != compute_dtype:
        grad = grad.to(compute_dtype)
    theta = param if param.dtype == compute_dtype else param.to(compute_dtype)
    rotated = any(isinstance(q, torch.Tensor) for q in bases)

    # Adam in the eigenbasis.
    grad_projected = _project(grad, bases, layout, back=False)
    exp_avg.mul_(beta1).add_(grad_projected, alpha=1.0 - beta1)
    exp_avg_sq.mul_(beta2).add_(grad_projected.square(), alpha=1.0 - beta2)
    denom = exp_avg_sq.sqrt().add_(eps)
    step_size = lr
    if correct_bias:
        bias_correction1 = 1.0 - beta1**step
        bias_correction2 = 1.0 - beta2**step
        step_size = step_size * (bias_correction2**0.5) / bias_correction1
    norm_grad = _project(exp_avg / denom, bases, layout, back=True)
    if normalize_grads:
        norm_grad = norm_grad / (1e-30 + torch.mean(norm_grad**2) ** 0.5)
    theta.add_(norm_grad, alpha=-step_size)
    if weight_decay > 0.0:
        theta.add_(theta, alpha=-lr * weight_decay)  # after the update, on the updated theta, raw lr
    if theta is not param:
        param.copy_(theta)

    # Preconditioner update, after the parameter update so the current G never enters its own projection. M is
    # carried to the original space with the old Q and back with the (possibly refreshed) new Q. With no rotated
    # side that round trip is a pure permutation (exact), so it is skipped.
    exp_avg_original = _project(exp_avg, bases, layout, back=True) if rotated else None
    _update_factors(grad, factors, shampoo_beta, layout)
    if refresh:
        _refresh_bases(factors, bases, exp_avg_sq, layout, work_dtype)
    if exp_avg_original is not None:
        exp_avg.copy_(_project(exp_avg_original, bases, layout, back=False))


def _validated(group: dict[str, Any]) -> dict[str, Any]:
    """Check (and normalise) whichever hyperparameters ``group`` sets; the error names the argument."""
    checks: dict[str, Check] = {
        **shared_checks(),
        "eps": lambda v: check_real("eps", v, low=0.0),
        "data_format": lambda v: check_choice("data_format", v, DATA_FORMATS),
        "eigh_jitter": lambda v: check_real("eigh_jitter", v, low=0.0),
        **bool_checks(*_FLAGS),
    }
    return validate_group(group, checks)


def _check_soap_impl(impl: str | None) -> str:
    """"reference" (per-tensor loop) or "batched" (equal-shape tensors stacked); None: "reference" if
    :func:`common.kernels.default_impl` says so, else "batched". The kernel names are accepted and mean "batched"
    (SOAP's elementwise part is a small share of its step; the matrices are what batching speeds up)."""
    if impl is None:
        return "reference" if default_impl() == "reference" else "batched"
    if impl == "batched":
        return impl
    return "reference" if check_impl(impl) == "reference" else "batched"


def _layout_for(p: torch.Tensor, group: dict[str, Any]) -> Layout:
    # merge_dims cannot reshape some empty shapes (e.g. (5, 0) -> [5]); an empty tensor has nothing to merge.
    return Layout(
        merge=group["merge_dims"] and p.numel() > 0,
        max_dim=group["max_precond_dim"],
        channels_last=group["data_format"] == "channels_last",
    )


class SOAP(CheckedOptimizer):
    """SOAP: Improving and Stabilizing Shampoo using Adam.

    Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson, Kakade, ICLR 2025, https://arxiv.org/abs/2409.11321.
    Follows ``soap.py`` of the official code, https://github.com/nikhilvyas/SOAP, at commit a1e5535 (2024-12-02,
    the version that keeps the momentum in the eigenbasis), including its defaults.

    Per tensor, with G = p.grad, sb = ``shampoo_beta`` (betas[1] if negative), one factor GG[i] per side of size
    k <= ``max_precond_dim`` (identity, stored as ``[]``, elsewhere):

    First call (initialisation only): GG[i] = (1-sb) G_(i) G_(i)^T, Q[i] = eigh(GG[i] + jitter I) with columns in
    descending order; M = V = 0; no parameter update, no weight decay, ``step`` stays 0 ("so that we never use the
    current gradients in the projection").

    Every later call (t <- t+1):
        G' = project(G) = G x_1 Q_1^T ... (Q_L^T G Q_R for a matrix)
        M <- b1 M + (1-b1) G';  V <- b2 V + (1-b2) G'^2          (both in the eigenbasis)
        U = project_back(M / (sqrt(V) + eps));  U <- U / (1e-30 + RMS(U)) if ``normalize_grads``
        theta <- theta - lr sqrt(1-b2^t)/(1-b1^t) U   (plain lr without ``correct_bias``; eps not bias-corrected)
        theta <- theta - lr wd theta                   (after the update, on the updated theta; skipped if wd = 0)
        M <- project_back(M) with the old Q; GG[i] <- lerp(GG[i], G_(i) G_(i)^T, 1-sb)
        if t % precondition_frequency == 0: per side, sort Q's columns by diag(Q^T GG Q) descending, permute V
            along that dim with the same order (V is not rotated), Q <- qr(GG Q).Q (one power step + QR)
        M <- project(M) with the new Q

    1-D tensors are not rotated unless ``precondition_1d`` (the paper's "AdamW for 1D layers"), but SOAP's betas,
    eps and first-call skip still apply. ``max_precond_dim=0`` turns every rotation off: SOAP becomes the
    HF-style AdamW it wraps, fed g_1, g_2, ... (g_0 only initialises). A conv kernel (O, I, H, W) gets four factors
    unless ``merge_dims`` fuses neighbouring dims while their product stays <= ``max_precond_dim`` (a whole
    tensor with at most ``max_precond_dim`` entries becomes one vector with one factor).

    Args:
        params: iterable of parameters or dicts defining parameter groups; every argument below can be overridden
            per group.
        lr: learning rate, >= 0. Default 3e-3.
        betas: (beta1, beta2) of the Adam moments, each in [0, 1). Default (0.95, 0.95).
        shampoo_beta: EMA factor of the Kronecker factors in [0, 1); any negative value means betas[1]. Default -1.
        eps: >= 0, added to sqrt(V) (not bias-corrected). 0 is accepted for reductions to torch Adam(eps=0); it
            divides 0 by 0 on a coordinate whose second moment is exactly 0. Default 1e-8.
        weight_decay: decoupled decay after the update, >= 0. Default 0.01.
        precondition_frequency: int >= 1, QR refresh every this many steps. Default 10.
        max_precond_dim: int >= 0; sides longer than this are not rotated. Default 10000.
        merge_dims: fuse dims as above (official ``merge_dims``). Default False.
        precondition_1d: rotate 1-D tensors too (with one n x n factor if n <= max_precond_dim). Default False.
        normalize_grads: divide the update by its RMS. Default False.
        data_format: "channels_first" or "channels_last"; with ``merge_dims``, a 4-D tensor in channels_last
            layout (O, H, W, I) is merged as (O, I, H, W). No effect without ``merge_dims`` (as in the official
            code). Default "channels_first".
        correct_bias: Adam bias correction in the step size. Default True.
        eigh_jitter: >= 0, added to the factors' diagonal before the initial eigh (official 1e-30; a larger one,
            e.g. 1e-20, helps eigh converge on rank-deficient factors). Default 1e-30.
        freeze_basis: test switch: Q is the identity and never refreshed, V is never permuted; GG is still
            accumulated. SOAP then equals its Adam variant step for step. Default False.
        precise: test switch: for float64 params, eigh on the unrounded factor and QR in float64 (the official code
            rounds both to float32). No effect for float32/bfloat16 params. Default False.
        impl: "reference" runs the per-tensor definition; "batched" stacks tensors of equal shape and does the
            rotations, factor updates and QR refreshes with bmm and batched QR (:mod:`papers.soap.batched`; equal to
            the reference to fp32/fp64 rounding; it skips the momentum's identity round trip between refreshes).
            Default None: "batched", or "reference" when :func:`common.kernels.default_impl` is "reference".

    State per tensor: ``step`` (int; 0 after the first call), ``exp_avg`` M and ``exp_avg_sq`` V (in the eigenbasis),
    ``GG`` and ``Q`` (lists with one k x k tensor or ``[]`` per side of the merged view), ``eigh_retries`` (int: how
    many initial eigh calls needed the float64 retry).

    Precision: M, V, GG and Q are float32 for float32/bfloat16/float16 params (QR has no sub-fp32 path; storing
    them in bf16 is a memory trade-off, not the official semantics) and the update is computed in float32 and
    copied back; float64 params keep float64 state. The official code runs a float64 param only under
    ``torch.set_default_dtype(torch.float64)`` (it makes GG in the default dtype and ``lerp_`` rejects mixed
    dtypes); there GG and Q are float64, the initial eigh runs in float64 on the factor rounded to float32
    (``.float()``, then ``+ 1e-30 * eye`` in the default dtype promotes the sum back), and every QR refresh runs in
    float32 on the rounded factor and basis. Ours computes the same for float64 params unless ``precise``.

    Deviations from the official code (theta and the state are otherwise the same):
        * bfloat16/float16 params get float32 M and V and a float32 update (official: M and V in the param dtype
          and GG in the default dtype, so ``lerp_`` rejects a low-precision Gram matrix); ``load_state_dict`` keeps
          the float32 state (torch casts every floating state tensor, nested lists included, to the param dtype).
        * ``precondition_frequency``, ``shampoo_beta`` (and so its betas[1] default) and ``data_format`` are read
          from the param group at every step, so they can be scheduled and set per group. The official code copies
          the first two into each tensor's state at its first call and keeps ``data_format`` as an attribute; when
          nobody changes them the two agree. Such keys in a loaded official checkpoint's state are dropped.
        * eigh: the jitter is configurable; a float64 retry is counted in ``state["eigh_retries"]`` and warned
          about; if float64 fails too (non-finite G), :class:`common.optim.linalg.EighError` says so.
        * an empty tensor gets the identity on every side and is never merged (official: 0 x 0 factors that act as
          the identity, and ``merge_dims`` can fail to reshape some empty shapes).
        * M and V are updated in place (the official code rebinds new tensors), and when no side is rotated the
          per-step project_back/project round trip of M, a pure permutation, is skipped: same values.
        * ``load_state_dict`` copies the buffers (torch keeps the source's tensors when dtype and device match).
        * test switches ``freeze_basis`` and ``precise``; stricter checks (every argument validated, ints must be
          ints); sparse gradients and complex params raise RuntimeError.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float = -1,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precond_dim: int = 10000,
        merge_dims: bool = False,
        precondition_1d: bool = False,
        normalize_grads: bool = False,
        data_format: str = "channels_first",
        correct_bias: bool = True,
        *,
        eigh_jitter: float = 1e-30,
        freeze_basis: bool = False,
        precise: bool = False,
        impl: str | None = None,
    ) -> None:
        self.impl = _check_soap_impl(impl)
        defaults = _validated(
            {
                "lr": lr,
                "betas": betas,
                "shampoo_beta": shampoo_beta,
                "eps": eps,
                "weight_decay": weight_decay,
                "precondition_frequency": precondition_frequency,
                "max_precond_dim": max_precond_dim,
                "merge_dims": merge_dims,
                "precondition_1d": precondition_1d,
                "normalize_grads": normalize_grads,
                "data_format": data_format,
                "correct_bias": correct_bias,
                "eigh_jitter": eigh_jitter,
                "freeze_basis": freeze_basis,
                "precise": precise,
            }
        )
        super().__init__(params, defaults)

    _validate_group = staticmethod(_validated)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the model and returns the loss."""
        loss = self._evaluate(closure)

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            shampoo_beta = group["shampoo_beta"] if group["shampoo_beta"] >= 0 else beta2
            pending: list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]] = []
            for p in self._params_with_grad(group):
                state = self.state[p]
                dtype = state_dtype(p.dtype)
                grad = p.grad if p.grad.dtype == dtype else p.grad.to(dtype)
                layout = _layout_for(p, group)

                if "Q" not in state:
                    factors, bases, retries = _soap_init(
                        grad,
                        layout=layout,
                        precondition_1d=group["precondition_1d"],
                        shampoo_beta=shampoo_beta,
                        jitter=group["eigh_jitter"],
                        rounding=dtype if group["precise"] else torch.float32,
                        freeze_basis=group["freeze_basis"],
                    )
                    if retries:
                        warn_eigh_retries("SOAP", dtype, p.shape)
                    fmt = torch.preserve_format
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=fmt)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=fmt)
                    state["GG"] = factors
                    state["Q"] = bases
                    state["eigh_retries"] = retries
                    continue  # the first call only initialises the preconditioner

                state["step"] += 1
                pending.append((p, grad, state))
            self._update(group, pending, beta1, beta2, shampoo_beta)
        return loss

    def _update(self, group: dict[str, Any], pending: list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]],
                beta1: float, beta2: float, shampoo_beta: float) -> None:
        """The step of every tensor past its first call: per tensor (``impl="reference"``) or batched over tensors of
        equal shape, dtype and step (:mod:`papers.soap.batched`)."""
        buckets: dict[tuple, list[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]] = {}
        for item in pending:
            p, _, state = item
            batch = self.impl != "reference" and p.numel() > 0
            key = (tuple(p.shape), p.dtype, p.device, state["step"]) if batch else (id(p),)
            buckets.setdefault(key, []).append(item)
        for items in buckets.values():
            p0, _, state0 = items[0]
            dtype = state_dtype(p0.dtype)
            step = state0["step"]
            kwargs = dict(
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                shampoo_beta=shampoo_beta,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                refresh=not group["freeze_basis"] and step % group["precondition_frequency"] == 0,
                layout=_layout_for(p0, group),
                normalize_grads=group["normalize_grads"],
                correct_bias=group["correct_bias"],
                work_dtype=dtype if group["precise"] else torch.float32,
            )
            if self.impl == "reference" or p0.numel() == 0:
                for p, grad, state in items:
                    _soap_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["GG"], state["Q"], step,
                                 **kwargs)
            else:
                soap_update_batched([it[0] for it in items], [it[1] for it in items],
                                    [it[2]["exp_avg"] for it in items], [it[2]["exp_avg_sq"] for it in items],
                                    [it[2]["GG"] for it in items], [it[2]["Q"] for it in items], step, **kwargs)

    def _restore_state(self, p: torch.Tensor, saved: dict[str, Any], state: dict[str, Any]) -> None:
        """After torch's load: restore the state dtypes (float32 for bf16/fp16 params), ints, and owned copies.

        Also accepts an official SOAP checkpoint: group keys it lacks are taken from this optimizer's current groups,
        and the per-tensor ``precondition_frequency`` / ``shampoo_beta`` it keeps in the state are dropped.
        """
        for key in _OFFICIAL_STATE_HYPERPARAMETERS:
            state.pop(key, None)
        restore_state(p, saved, state, ("GG", "Q"))
        state.setdefault("eigh_retries", 0)
