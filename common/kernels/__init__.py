"""Fused multi-tensor update kernels: one update rule per elementwise optimizer, several implementations.

Each rule is one module with the per-tensor reference definition and a ``<rule>_step(impl, params, grads, *state,
steps, **hyperparameters)`` entry point; its Triton kernel is one module under :mod:`common.kernels.triton_kernels`.

    adamw      AdamW (torch.optim.AdamW maths), the yardstick of ``reproduce bench``
    radam      RAdam (official code)
    adabelief  AdaBelief (adabelief-pytorch 0.2.1)
    mars       MARS-AdamW / -Lion / -SGD and MARS's AdamW branch (MARS-Shampoo's Newton-Schulz is not elementwise)
    sophia     SophiaG / SophiaH and the Hessian EMA
    spam       SPAM (spike clip, reset, post-reset warmup; elementwise)
    stablespam Stable-SPAM (AdaClip's max and AdaGN's norm per tensor, then Adam); also a C kernel for float32 on
               CPU (``impl="native"``, ``stablespam.c``)

Adding a rule: write ``common/kernels/<rule>.py`` with ``<rule>_update`` (reference), a foreach form, a fused
per-tensor form for torch.compile and ``<rule>_step`` calling :func:`common.kernels.dispatch.run`; and
``common/kernels/triton_kernels/<rule>.py`` with the kernel and its ``launch``. Per-tensor reductions (a max, a norm)
take a first launch that accumulates into a small per-tensor buffer with atomics, as MARS's clip and Stable-SPAM do.
"""

from common.kernels.dispatch import (
    CHOICES,
    IMPLS,
    NATIVE,
    available_impls,
    check_impl,
    default_impl,
    resolve_impl,
    using,
)

__all__ = ["CHOICES", "IMPLS", "NATIVE", "available_impls", "check_impl", "default_impl", "resolve_impl", "using"]
