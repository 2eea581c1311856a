"""Models shared by the papers: CIFAR ResNets (post- and pre-activation), LeNet, DenseNet, ConvNeXt, a small CNN,
MLP / logistic regression, a tiny GPT."""

from common.models.cnn import SmallCNN, small_cnn
from common.models.convnext import ConvNeXt, convnext, convnext_femto
from common.models.densenet import DenseNet, densenet
from common.models.gpt import GPT, GPTConfig
from common.models.lenet import LeNet, lenet
from common.models.mlp import linear, mlp
from common.models.preact_resnet import PreActResNet, preact_resnet
from common.models.resnet import CifarResNet, resnet, resnet20, small_resnet

__all__ = [
    "GPT", "CifarResNet", "ConvNeXt", "DenseNet", "GPTConfig", "LeNet", "PreActResNet", "SmallCNN", "convnext",
    "convnext_femto", "densenet", "lenet", "linear", "mlp", "preact_resnet", "resnet", "resnet20", "small_cnn",
    "small_resnet",
]
