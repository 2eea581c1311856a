"""The paper's optimizers: Stable-SPAM (both semantics) and its predecessor SPAM."""

from papers.stable_spam.spam import SPAM
from papers.stable_spam.stablespam import StableSPAM

__all__ = ["SPAM", "StableSPAM"]
