"""Multilayer perceptron and logistic regression: the convex / near-convex baselines of optimizer papers.

Both flatten their input, so they take images (B x C x H x W) or feature vectors (B x D) alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def mlp(in_features: int, hidden: Sequence[int], num_classes: int,
        activation: Callable[[], nn.Module] = nn.ReLU) -> nn.Sequential:
    """Flatten -> [Linear -> activation] per hidden width -> Linear(num_classes)."""
    _check_positive("in_features", in_features)
    _check_positive("num_classes", num_classes)
    for i, h in enumerate(hidden):
        _check_positive(f"hidden[{i}]", h)
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def linear(in_features: int, num_classes: int) -> nn.Sequential:
    """Logistic (softmax) regression: Flatten -> Linear; pair it with cross-entropy."""
    return mlp(in_features, [], num_classes)
