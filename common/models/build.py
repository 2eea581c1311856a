"""Model construction from a preset's ``model`` section, shared by the LM experiments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from common.models.gpt import GPT, GPTConfig, llama_config
from common.quant.linear import QuantConfig


def build_lm(model: Mapping[str, Any], vocab_size: int) -> nn.Module:
    """``kind: gpt`` (GPTConfig fields) or ``kind: llama`` (llama_config arguments); ``compile: true``
    wraps the model in torch.compile (gpu presets); ``quant: {...}`` (QuantConfig fields, or null) fake-quantizes
    the Blocks' projections; ``pure_bf16: true`` casts the whole model, master weights included, to bfloat16
    (the Stable-SPAM repo's ``model.to(torch.bfloat16)``)."""
    spec = dict(model)
    kind = spec.pop("kind", "gpt")
    compile_ = bool(spec.pop("compile", False))
    pure_bf16 = bool(spec.pop("pure_bf16", False))
    quant = spec.pop("quant", None)
    if quant is not None:
        spec["quant"] = QuantConfig.from_mapping(quant)
    if kind == "llama":
        cfg = llama_config(vocab_size=vocab_size, **spec)
    elif kind == "gpt":
        cfg = GPTConfig(vocab_size=vocab_size, **spec)
    else:
        raise ValueError(f"model.kind must be gpt or llama, got {kind!r}")
    net = GPT(cfg)
    if pure_bf16:
        net = net.to(torch.bfloat16)
    return torch.compile(net) if compile_ else net  # type: ignore[return-value]


def build_classifier(model: Mapping[str, Any], data: Any) -> nn.Module:
    """An image classifier from a preset's ``model`` section, sized by the datamodule ``data`` (classes, channels,
    image size): ``kind: cnn`` (``channels``, ``hidden``), ``resnet`` (``depth``, optional ``width``), ``vgg``
    (``name``), ``lenet`` (optional ``batchnorm``, default on), ``preact_resnet`` (``depth``, optional ``width``),
    ``densenet`` (``depth``, ``growth_rate``, optional ``bottleneck``, ``compression``) or ``convnext`` /
    ``convnext_femto`` (optional ``size``, default femto, ``patch_size``, ``drop_path``)."""
    from common.errors import ConfigError
    from common.models.cnn import small_cnn
    from common.models.convnext import convnext
    from common.models.densenet import densenet
    from common.models.lenet import lenet
    from common.models.preact_resnet import preact_resnet
    from common.models.resnet import resnet
    from common.models.vgg import vgg

    kind = str(model["kind"])
    classes, channels = data.num_classes, data.in_channels
    if kind == "cnn":
        return small_cnn(classes, channels, data.image_size, channels=tuple(model["channels"]),
                         hidden=int(model["hidden"]))
    if kind == "resnet":
        return resnet(int(model["depth"]), num_classes=classes, in_channels=channels,
                      width=int(model.get("width", 16)))
    if kind == "vgg":
        return vgg(str(model["name"]), num_classes=classes, in_channels=channels)
    if kind == "lenet":
        return lenet(classes, channels, data.image_size, batchnorm=bool(model.get("batchnorm", True)))
    if kind == "preact_resnet":
        return preact_resnet(int(model["depth"]), classes, channels, width=int(model.get("width", 16)))
    if kind == "densenet":
        return densenet(int(model["depth"]), int(model["growth_rate"]), classes, channels,
                        bottleneck=bool(model.get("bottleneck", True)),
                        compression=float(model.get("compression", 0.5)))
    if kind in ("convnext", "convnext_femto"):
        size = str(model.get("size", "femto"))
        if kind == "convnext_femto" and size != "femto":
            raise ConfigError(f"model.kind convnext_femto with size {size!r}: use kind convnext for other sizes")
        patch = model.get("patch_size")
        return convnext(size, classes, channels, data.image_size, None if patch is None else int(patch),
                        drop_path=float(model.get("drop_path", 0.0)))
    raise ConfigError(f"model.kind {kind!r} has no builder (cnn, resnet, vgg, lenet, preact_resnet, densenet, "
                      "convnext, convnext_femto)")
