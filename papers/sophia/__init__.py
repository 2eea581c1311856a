"""Sophia: A Scalable Stochastic Second-order Optimizer for Language Model Pre-training (Liu et al., ICLR 2024)."""
