"""The networks of the VR papers' paper presets: dvr's LeNet, pre-activation ResNets (resnet-small, resnet110),
DenseNet-BC-40-36, and alpha-SVRG's ConvNeXt-femto. Output shapes on CIFAR and Fashion-MNIST inputs and parameter
counts: ConvNeXt-femto's 5,217,784 at the ImageNet head is timm's ``convnext_femto`` (5.22M); the others are
counted from the architectures as dvr's code builds them (LeNet 62,006 without / 62,458 with batch norm,
resnet-small 68,642, resnet110 1,730,426, densenet-40-36 1,542,682; 10 classes, 32x32x3)."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from common.errors import ConfigError
from common.models import convnext_femto, densenet, lenet, preact_resnet
from common.models.build import build_classifier


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("build,count", [
    (lambda: lenet(batchnorm=False), 62_006),
    (lambda: lenet(), 62_458),
    (lambda: preact_resnet(20, width=8), 68_642),
    (lambda: preact_resnet(110), 1_730_426),
    (lambda: densenet(40, 36), 1_542_682),
    (lambda: convnext_femto(1000, image_size=224), 5_217_784),
], ids=["lenet", "lenet-bn", "resnet-small", "resnet110", "densenet-40-36", "convnext-femto-imagenet"])
def test_parameter_counts(build, count):
    with torch.device("meta"):
        assert _params(build()) == count


def test_convnext_femto_cifar_stem_changes_only_the_stem_and_head():
    imagenet, cifar = convnext_femto(10, image_size=224), convnext_femto(10, image_size=32)
    assert imagenet.downsample[0][0].kernel_size == (4, 4) and cifar.downsample[0][0].kernel_size == (1, 1)
    stem = 3 * 48 * (16 - 1)  # 4x4 vs 1x1 patch weights
    assert _params(imagenet) - _params(cifar) == stem
    assert 4.8e6 < _params(cifar) < 4.9e6


@pytest.mark.parametrize("kind,spec", [
    ("lenet", {}), ("preact_resnet", {"depth": 20, "width": 8}), ("densenet", {"depth": 40, "growth_rate": 12}),
    ("convnext_femto", {}), ("convnext", {"size": "atto"}),
])
@pytest.mark.parametrize("channels,size", [(3, 32), (1, 28)])
def test_build_classifier_shapes_and_backward(kind, spec, channels, size):
    torch.manual_seed(0)
    data = SimpleNamespace(num_classes=7, in_channels=channels, image_size=size)
    net = build_classifier({"kind": kind, **spec}, data)
    out = net(torch.randn(4, channels, size, size))
    assert out.shape == (4, 7) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_convnext_layer_scale_starts_small_and_blocks_are_near_identity():
    net = convnext_femto(10, image_size=32)
    block = net.stages[0][0]
    assert torch.all(block.gamma == 1e-6)
    x = torch.randn(2, 48, 8, 8)
    assert torch.allclose(block(x), x, atol=1e-4)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="depth"):
        preact_resnet(21)
    with pytest.raises(ValueError, match="depth"):
        densenet(41, 12)
    with pytest.raises(ValueError, match="image_size"):
        lenet(image_size=8)
    with pytest.raises(ValueError, match="size"):
        from common.models.convnext import convnext
        convnext("huge")
    with pytest.raises(ConfigError, match="no builder"):
        build_classifier({"kind": "transformer"}, SimpleNamespace(num_classes=2, in_channels=1, image_size=28))
