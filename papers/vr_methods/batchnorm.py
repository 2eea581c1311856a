"""Batch-norm statistics around SVRG's extra forwards (dvr's ``vr_bn_at_recalibration`` concern).

The snapshot pass and the snapshot-gradient forwards run the model in training mode (batch statistics, so the
control variate compares the same function at two points), but must not move the running statistics that
evaluation uses: we save and restore them, dvr's default. ``mode="update"`` lets them move.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

BN_MODES = ("freeze", "update")


@contextlib.contextmanager
def frozen_batchnorm_stats(model: nn.Module, mode: str = "freeze") -> Iterator[None]:
    """Restore every batch-norm layer's running mean/var/count on exit (``mode="freeze"``); a no-op for "update"."""
    if mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {list(BN_MODES)}, got {mode!r}")
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: v.detach().clone() for k, v in m.named_buffers(recurse=False) if v is not None} for m in layers]
    try:
        yield
    finally:
        if mode == "freeze":
            with torch.no_grad():
                for m, buffers in zip(layers, saved, strict=True):
                    for name, value in buffers.items():
                        getattr(m, name).copy_(value)
