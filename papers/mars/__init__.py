"""MARS: Unleashing the Power of Variance Reduction for Training Large Models (Yuan et al., ICML 2025)."""
