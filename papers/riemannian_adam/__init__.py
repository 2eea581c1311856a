"""Riemannian Adaptive Optimization Methods (Bécigneul & Ganea, ICLR 2019)."""

from papers.riemannian_adam.manifolds import Euclidean, PoincareBall, manifold_of, tag_manifold
from papers.riemannian_adam.optim import RiemannianAdagrad, RiemannianAdam, RiemannianSGD

__all__ = ["Euclidean", "PoincareBall", "RiemannianAdagrad", "RiemannianAdam", "RiemannianSGD", "manifold_of",
           "tag_manifold"]
