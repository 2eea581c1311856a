"""Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit Adam (Huang et al., 2025), with SPAM (ICLR 2025)."""

from papers.stable_spam.optim import SPAM, StableSPAM

__all__ = ["SPAM", "StableSPAM"]
