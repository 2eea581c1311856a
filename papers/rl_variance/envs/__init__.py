"""In-repo RL environments (no downloads, no gym): DeepSea, N-chain, a toy token MDP and a contextual bandit."""

from papers.rl_variance.envs.bandit import Bandit, kl_rows
from papers.rl_variance.envs.deepsea import DeepSea
from papers.rl_variance.envs.nchain import NChain
from papers.rl_variance.envs.token_mdp import TokenMDP

__all__ = ["Bandit", "DeepSea", "NChain", "TokenMDP", "kl_rows"]
