"""Hessian-diagonal estimators for Sophia, as functions a training loop calls every k optimizer steps.

The official code keeps this in the training loop, not in the optimizer (``train_sophiag.py``, commit a7e1572); so do
we, so a Lightning module with manual optimization can run the extra forward pass itself. One loop, k = 10:

    for step, (x, y) in enumerate(train_batches, start=1):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if hessian_update_due(step, k=10):
            x_h, _ = next(train_batches)  # an extra batch from the training stream, not used for a gradient step
            log(gnb_hessian_step(opt, model(x_h), grad_clip=1.0, generator=gen))

With gradient accumulation, backprop ``sampled_label_loss(logits_i, generator) / accum`` per micro-batch, clip, then
call ``opt.update_hessian()`` and ``opt.zero_grad()`` yourself.

Distributed (DDP): both estimators average their estimate over the ranks (:func:`average_across_ranks`) before it
enters h, so h, and with it every parameter, stays identical on every rank. This matters because the estimate's
backward usually bypasses DDP's gradient hooks (a Lightning manual-optimization step calls the inner module, and
Hutchinson uses ``torch.autograd.grad``); when it did go through DDP the grads are already averaged and averaging
again changes nothing. Each rank samples its labels (GNB) or probes (Hutchinson) from its own generator: draws on
different ranks should be independent, as in the official multi-GPU run, and only their average enters h. So a
2-rank run's estimate has the single-process estimate's distribution, not its exact bits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from common.optim.validation import check_choice, check_real
from papers.sophia.optim import SophiaG, SophiaH

__all__ = [
    "average_across_ranks",
    "gnb_hessian_step",
    "hessian_update_due",
    "hutchinson_hessian_step",
    "sample_labels",
    "sampled_label_loss",
]

PROBE_DISTRIBUTIONS = ("gaussian", "rademacher")


def hessian_update_due(steps_done: int, k: int) -> bool:
    """True after the k-th, 2k-th, ... optimizer step, the official ``iter_num % k == k - 1`` (0-based iter_num).

    ``steps_done`` counts the optimizer steps taken so far, including the one just taken (Lightning manual
    optimization: ``self.global_step`` read after ``opt.step()``). So the first k steps are sign-momentum steps,
    and a resumed run updates h at the same steps as an uninterrupted one.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    return steps_done > 0 and steps_done % k == 0


def sample_labels(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """y_hat ~ Categorical(softmax(logits)) at every position of ``logits`` (..., V), drawn without grad.

    Probabilities are computed in fp32 whatever the logits dtype. ``generator`` (on the logits' device) makes the
    draw reproducible, which a bit-identical resume needs.
    """
    probs = logits.detach().reshape(-1, logits.shape[-1]).float().softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).view(logits.shape[:-1])


def sampled_label_loss(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (..., V) against labels sampled from their own softmax.

    Its gradient is the g_hat of the Gauss-Newton-Bartlett estimator: with B positions, E[B g_hat^2] is the
    Gauss-Newton diagonal of the mean loss (Bartlett's identity), which the true-label gradient squared is not.
    """
    labels = sample_labels(logits, generator)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))


def gnb_hessian_step(
    optimizer: SophiaG,
    logits: torch.Tensor,
    *,
    grad_clip: float | None = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One Gauss-Newton-Bartlett update of SophiaG's h, from ``logits`` (..., V) computed with grad enabled.

    Clears the grads, backprops :func:`sampled_label_loss`, clips the global grad norm of the optimizer's params to
    ``grad_clip`` as the official loop does (None: no clip), calls ``optimizer.update_hessian()``
    (h <- b2 h + (1-b2) g_hat^2; the group's ``bs`` multiplies h in the step's denominator, so ``bs`` must be the
    number of positions in ``logits``) and clears the grads again. Returns ``optimizer.stats()`` plus the sampled-label
    loss and the pre-clip grad norm, for logging.
    """
    if not isinstance(optimizer, SophiaG):
        raise TypeError(f"gnb_hessian_step needs a SophiaG (it squares the gradient), got {type(optimizer).__name__}")
    if grad_clip is not None:
        grad_clip = check_real("grad_clip", grad_clip, low=0.0, low_inclusive=False)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    optimizer.zero_grad(set_to_none=True)
    loss = sampled_label_loss(logits, generator)
    loss.backward()
    with_grad = [p for p in params if p.grad is not None]
    average_across_ranks([p.grad for p in with_grad])  # before the clip, so every rank clips the same g_hat
    if grad_clip is not None:
        grad_norm = torch.nn.utils.clip_grad_norm_(with_grad, grad_clip)
    elif with_grad:
        grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in with_grad]))
    else:
        grad_norm = torch.zeros(())
    optimizer.update_hessian()
    optimizer.zero_grad(set_to_none=True)
    return {**optimizer.stats(), "estimator_loss": loss.item(), "estimator_grad_norm": grad_norm.item()}


def average_across_ranks(tensors: list[torch.Tensor]) -> None:
    """In place: each tensor becomes its mean over the torch.distributed ranks (a no-op in one process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def _probe(p: torch.Tensor, distribution: str, generator: torch.Generator | None) -> torch.Tensor:
    if distribution == "gaussian":
        return torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype)
    bits = torch.randint(0, 2, p.shape, generator=generator, device=p.device)
    return (2 * bits - 1).to(p.dtype)


def hutchinson_hessian_step(
    optimizer: SophiaH,
    loss: torch.Tensor,
    *,
    distribution: str = "gaussian",
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """One Hutchinson update of SophiaH's h from ``loss``, a scalar computed with grad enabled.

    Draws u (one tensor per parameter with a gradient, in the optimizer's order; Gaussian as in the authors'
    levanter code, or Rademacher, which has lower variance), forms H u by double backward, leaves u * (H u) in
    ``p.grad``, calls ``optimizer.update_hessian()`` (h <- b2 h + (1-b2) u * (H u); E[u * (H u)] = diag(H)) and clears
    the grads. Returns ``optimizer.stats()`` plus the loss. Under DDP (``torch.autograd.grad`` bypasses DDP's
    all-reduce) the estimate is averaged across ranks here, so every rank folds the same u * (H u) into h.
    """
    if not isinstance(optimizer, SophiaH):
        raise TypeError(f"hutchinson_hessian_step needs a SophiaH, got {type(optimizer).__name__}")
    check_choice("distribution", distribution, PROBE_DISTRIBUTIONS)
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    live = [(p, g) for p, g in zip(params, grads, strict=True) if g is not None]
    probes = [_probe(p, distribution, generator) for p, _ in live]
    # H u = d/dtheta <grad, u>; a gradient that does not depend on theta (a linear loss) contributes nothing.
    curved = [(g, u) for (_, g), u in zip(live, probes, strict=True) if g.requires_grad]
    hvps: tuple[torch.Tensor | None, ...] = (None,) * len(live)
    if curved:
        hvps = torch.autograd.grad(
            [g for g, _ in curved], [p for p, _ in live], grad_outputs=[u for _, u in curved], allow_unused=True
        )
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        for (p, _), u, hvp in zip(live, probes, hvps, strict=True):
            p.grad = u * hvp if hvp is not None else torch.zeros_like(p)
        average_across_ranks([p.grad for p, _ in live])
    optimizer.update_hessian()
    optimizer.zero_grad(set_to_none=True)
    return {**optimizer.stats(), "estimator_loss": loss.item()}
