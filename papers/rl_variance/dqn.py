"""DQN and Adam LMCDQN on the in-repo N-chain, without Tianshou, following the official setup.

What the official code takes from Tianshou 0.4.10 and we rebuild: an n-step replay buffer (returns cut at episode
ends, bootstrapped from the target network at the n-th next state; double-Q picks the action with the online
net), MSE TD loss (no gradient clip), a target sync every ``target_update`` gradient steps, ``step_per_collect``
env steps per collect and ``update_per_step`` learn calls per env step. Adam LMCDQN is the same agent with the
:class:`~papers.rl_variance.optim.ASGLD` optimizer, ``update_num`` aSGLD steps per learn call (each on a fresh
batch, as ``LMCDQNPolicy.update``) and a greedy behaviour policy (``exploration_noise=False``); the DQN baseline
uses Adam and epsilon-greedy exploration with a linear decay. Episodes that hit the horizon count as terminal
(Tianshou 0.4 with gym's TimeLimit).

:class:`DQNAgent` holds the maths and the state (one ``state_dict`` with network, target, optimizer, replay buffer,
environment and generators, so a resumed run repeats an uninterrupted one); :class:`DQNModule` is the Lightning
face: manual optimization over the rollout stream (:class:`RolloutStream`: one item per collect; each
``training_step`` rolls out with the current network, stores the chunk and learns).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from common.lit.fit import quiet_lightning
from common.models.mlp import mlp
from papers.rl_variance.envs.nchain import NChain, chain_step
from papers.rl_variance.optim import ASGLD


class BatchedMLP(nn.Module):
    """S independent MLPs (ReLU) evaluated with one batched matmul per layer: x (S, B, in) -> (S, B, out).

    Copy s is initialised exactly as ``nn.Linear`` layers under ``torch.manual_seed(seeds[s])``. All weights and
    biases live in ONE flat parameter (views per layer): the optimizers here are elementwise, so this changes no
    number, and a step costs a handful of tensor ops instead of a handful per layer."""

    def __init__(self, sizes: list[int], seeds: list[int]) -> None:
        super().__init__()
        weights, biases = [], []
        for s in seeds:
            torch.manual_seed(s)
            net = mlp(sizes[0], sizes[1:-1], sizes[-1])
            layers = [m for m in net if isinstance(m, nn.Linear)]
            weights.append([m.weight.detach().T.clone() for m in layers])
            biases.append([m.bias.detach().clone() for m in layers])
        pieces = [torch.stack(w) for w in zip(*weights, strict=True)]
        pieces += [torch.stack(b)[:, None, :] for b in zip(*biases, strict=True)]
        self.shapes = [tuple(p.shape) for p in pieces]
        self.flat = nn.Parameter(torch.cat([p.reshape(-1) for p in pieces]))

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        views, offset = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape))
            views.append(self.flat[offset:offset + n].view(shape))
            offset += n
        k = len(views) // 2
        return list(zip(views[:k], views[k:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = self.layers()
        for i, (w, b) in enumerate(layers):
            x = torch.baddbmm(b, x, w)
            if i < len(layers) - 1:
                x = torch.relu(x)
        return x


class ReplayBuffer:
    """A flat buffer per run, S runs in lockstep (no wrap-around needed: capacity >= total steps)."""

    def __init__(self, runs: int, capacity: int, obs_dim: int) -> None:
        self.obs = np.zeros((runs, capacity, obs_dim), dtype=np.float32)
        self.obs_next = np.zeros((runs, capacity, obs_dim), dtype=np.float32)
        self.act = np.zeros((runs, capacity), dtype=np.int64)
        self.rew = np.zeros((runs, capacity), dtype=np.float64)
        self.done = np.zeros((runs, capacity), dtype=bool)
        self.size = 0

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        """``chunk[key]`` has shape (S, n, ...)."""
        n = chunk["act"].shape[1]
        if self.size + n > self.act.shape[1]:
            raise ValueError(f"replay buffer full ({self.act.shape[1]}); raise buffer_size")
        for key in ("obs", "obs_next", "act", "rew", "done"):
            getattr(self, key)[:, self.size:self.size + n] = chunk[key]
        self.size += n

    def nstep(self, idx: np.ndarray, n: int, gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For indices (S, B): the n-step discounted reward sum (cut after the first done), the index whose
        obs_next is bootstrapped, and whether the return ended in a terminal (then no bootstrap)."""
        rows = np.arange(idx.shape[0])[:, None]
        ret = np.zeros(idx.shape)
        last = idx.copy()
        ended = np.zeros(idx.shape, dtype=bool)
        for j in range(n):
            k = np.minimum(idx + j, self.size - 1)
            live = ~ended & (idx + j < self.size)
            ret += np.where(live, gamma**j * self.rew[rows, k], 0.0)
            last = np.where(live, k, last)
            ended |= live & self.done[rows, k]
        return ret, last, ended

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k)[:, :self.size].copy() for k in ("obs", "obs_next", "act", "rew", "done")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = 0
        self.add(state)


class DQNAgent:
    """Q-networks, targets, optimizer, replay buffers, environments and generators of S runs (one per seed) that
    step in lockstep; the networks are independent slices of one batched MLP, so every optimizer here (elementwise)
    moves each run as if alone. Run s draws its network init from ``seeds[s]``; the exploration, batch-sampling and
    Langevin-noise generators are shared by the S runs (seeded from the seed list).

    ``cfg`` keys: n, hidden, buffer_size, batch_size, n_step, gamma, target_update, step_per_collect,
    update_per_step, update_num, double, eps_start, eps_final, eps_decay_steps, explore ("egreedy" | "greedy"),
    optimizer ({name: adam | asgld, lr, ...}).
    """

    def __init__(self, cfg: Any, seeds: list[int]) -> None:
        self.cfg = _plain(cfg)
        cfg = self.cfg
        self.seeds = list(seeds)
        S = len(self.seeds)
        self.envs = [NChain(int(cfg.n)) for _ in seeds]
        self.eval_env = NChain(int(cfg.n))
        n = self.envs[0].n
        self.net = BatchedMLP([n, *[int(h) for h in cfg.hidden], 2], self.seeds)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        base = 1_000_003 * self.seeds[0] + S
        self.optimizer = make_optimizer(self.net.parameters(), cfg.optimizer, base)
        self.buffer = ReplayBuffer(S, int(cfg.buffer_size), n)
        self.rng = np.random.default_rng(base)
        self.codes = np.tril(np.ones((n, n), dtype=np.float32))  # row s-1: the thermometer code of state s
        for env in self.envs:
            env.reset()
        self.env_steps = 0
        self.updates = 0
        self.episode_return = np.zeros(S)
        self.train_returns: list[tuple[int, list[float]]] = []
        self.eval_curve: list[tuple[int, list[float]]] = []

    # --- acting ---------------------------------------------------------------------------------------------
    def epsilon(self) -> float:
        if str(self.cfg.explore) == "greedy":
            return 0.0
        frac = min(1.0, self.env_steps / max(1, int(self.cfg.eps_decay_steps)))
        return float(self.cfg.eps_start) + frac * (float(self.cfg.eps_final) - float(self.cfg.eps_start))

    @torch.no_grad()
    def greedy_table(self) -> np.ndarray:
        """argmax_a Q(s, a) per run for every state s = 1..N, (S, N): the observation is a thermometer code, so
        one forward pass over the N codes is the greedy policy while the parameters stay fixed (a whole collect)."""
        codes = torch.from_numpy(self.codes).expand(len(self.seeds), -1, -1)
        return self.net(codes).argmax(-1).numpy()

    def collect(self, steps: int) -> dict[str, np.ndarray]:
        """Step every run's environment ``steps`` times with its behaviour policy; returns (S, steps, ...) arrays."""
        S = len(self.seeds)
        rows: dict[str, list] = {k: [] for k in ("obs", "act", "rew", "done", "obs_next")}
        policy = self.greedy_table()
        runs = np.arange(S)
        for _ in range(steps):
            state = np.array([env.state for env in self.envs])
            act = policy[runs, state - 1]
            eps = self.epsilon()
            if eps > 0:
                explore = self.rng.random(S) < eps
                act = np.where(explore, self.rng.integers(0, 2, S), act)
            next_state, rew = chain_step(state, act, self.eval_env.n)
            for env, st in zip(self.envs, next_state, strict=True):
                env.state, env.t = int(st), env.t + 1
            done = np.array([env.t >= env.horizon for env in self.envs])
            for k, v in zip(rows, (self.codes[state - 1], act, rew, done, self.codes[next_state - 1]), strict=True):
                rows[k].append(v)
            self.env_steps += 1
            self.episode_return += rew
            if done.all():  # same horizon everywhere: the runs end their episodes together
                self.train_returns.append((self.env_steps, self.episode_return.tolist()))
                self.episode_return = np.zeros(S)
                for env in self.envs:
                    env.reset()
        return {k: np.stack(v, 1) for k, v in rows.items()}

    def evaluate(self) -> list[float]:
        """One greedy episode per run (the environment is deterministic) with the current networks."""
        out = []
        for policy in self.greedy_table():
            self.eval_env.reset()
            total, done = 0.0, False
            while not done:
                _, r, done = self.eval_env.step(int(policy[self.eval_env.state - 1]))
                total += r
            out.append(total)
        return out

    # --- learning -------------------------------------------------------------------------------------------
    def loss(self) -> torch.Tensor:
        """Sum over runs of the MSE TD loss on a fresh batch per run, n-step (double-)Q targets from the target."""
        cfg = self.cfg
        S, B = len(self.seeds), int(cfg.batch_size)
        idx = self.rng.integers(0, self.buffer.size, (S, B))
        n, gamma = int(cfg.n_step), float(cfg.gamma)
        ret, last, ended = self.buffer.nstep(idx, n, gamma)
        rows = np.arange(S)[:, None]
        steps_taken = last - idx + 1  # rewards summed, so the bootstrap is discounted by gamma^steps_taken
        with torch.no_grad():
            nxt = torch.from_numpy(self.buffer.obs_next[rows, last])
            q_t = self.target(nxt)
            a_star = self.net(nxt).argmax(-1) if bool(cfg.double) else q_t.argmax(-1)
            boot = q_t.gather(-1, a_star[..., None])[..., 0].double()
            target = torch.from_numpy(ret) + torch.from_numpy((~ended) * gamma**steps_taken) * boot
        q = self.net(torch.from_numpy(self.buffer.obs[rows, idx]))
        q = q.gather(-1, torch.from_numpy(self.buffer.act[rows, idx])[..., None])[..., 0]
        return ((target.float() - q) ** 2).mean(-1).sum()

    def after_update(self) -> None:
        self.updates += 1
        if self.updates % int(self.cfg.target_update) == 0:
            self.target.load_state_dict(self.net.state_dict())

    def updates_due(self, steps: int) -> int:
        """Learn calls after a collect of ``steps`` env steps (Tianshou: round(update_per_step * steps))."""
        return round(float(self.cfg.update_per_step) * steps)

    def train_chunk(self, chunk: dict[str, np.ndarray], backward: Any = None, step: Any = None) -> list[float]:
        """Store a collected chunk, then learn (``update_num`` optimizer steps per learn call, each on a fresh
        batch) once the buffer holds a batch. ``backward``/``step`` default to plain autograd and the agent's
        optimizer (Lightning passes its own); returns the losses."""
        self.buffer.add(chunk)
        losses: list[float] = []
        if self.buffer.size < int(self.cfg.batch_size):
            return losses
        for _ in range(self.updates_due(chunk["act"].shape[1]) * int(self.cfg.update_num)):
            self.optimizer.zero_grad()
            loss = self.loss()
            (backward or (lambda x: x.backward()))(loss)
            (step or self.optimizer.step)()
            self.after_update()
            losses.append(float(loss.detach()))
        return losses

    def maybe_evaluate(self, every: int) -> None:
        if self.env_steps % every == 0:
            self.eval_curve.append((self.env_steps, self.evaluate()))

    def run(self, env_steps: int, eval_every: int) -> None:
        """The plain loop (tests, resume): collect, train, evaluate, until ``env_steps``."""
        per = int(self.cfg.step_per_collect)
        while self.env_steps < env_steps:
            self.train_chunk(self.collect(per))
            self.maybe_evaluate(eval_every)

    # --- checkpoints ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "buffer": self.buffer.state_dict(),
                "rng": self.rng.bit_generator.state, "envs": [(e.state, e.t) for e in self.envs],
                "counters": (self.env_steps, self.updates, self.episode_return.copy()),
                "train_returns": list(self.train_returns), "eval_curve": list(self.eval_curve)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.rng.bit_generator.state = state["rng"]
        for env, (st, t) in zip(self.envs, state["envs"], strict=True):
            env.state, env.t = st, t
        self.env_steps, self.updates, ep = state["counters"]
        self.episode_return = ep.copy()
        self.train_returns, self.eval_curve = list(state["train_returns"]), list(state["eval_curve"])


class _Config(dict):
    """Attribute access over a plain dict: OmegaConf lookups cost more than the maths in the inner loops."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(key) from e


def _plain(cfg: Any) -> _Config:
    from omegaconf import DictConfig, OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return _Config({k: _Config(v) if isinstance(v, dict) else v for k, v in raw.items()})


def make_optimizer(params: Any, ocfg: Any, seed: int) -> torch.optim.Optimizer:
    """``{name: adam, lr}`` (the DQN baseline, Tianshou's default optimizer) or ``{name: asgld, lr, noise_scale, a,
    betas, eps}`` (Adam LMCDQN)."""
    name = str(ocfg.name)
    if name == "adam":
        return torch.optim.Adam(params, lr=float(ocfg.lr))
    if name == "asgld":
        return ASGLD(params, lr=float(ocfg.lr), noise_scale=float(ocfg.noise_scale), a=float(ocfg.get("a", 1.0)),
                     betas=tuple(ocfg.get("betas", (0.9, 0.999))), eps=float(ocfg.get("eps", 1e-8)), seed=seed)
    raise ValueError(f"optimizer name must be 'adam' or 'asgld', got {name!r}")


class RolloutStream(IterableDataset):
    """The data stream: one item per collect (its index), ``env_steps / step_per_collect`` of them.

    Lightning fetches one item ahead of ``training_step``, so a stream that stepped the environment itself would
    act with the parameters of one update ago; the items are therefore the collect schedule and the rollout with
    the current network happens in ``training_step`` (:meth:`DQNAgent.collect`)."""

    def __init__(self, env_steps: int, step_per_collect: int) -> None:
        self.collects = -(-env_steps // step_per_collect)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.collects))


class DQNModule(pl.LightningModule):
    """DQN / Adam LMCDQN as a LightningModule: manual optimization over the rollout stream."""

    def __init__(self, cfg: Any, seeds: list[int], env_steps: int, eval_every: int) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.agent = DQNAgent(cfg, seeds)
        self.net = self.agent.net  # registered, so Lightning sees the parameters
        self.env_steps, self.eval_every = env_steps, eval_every

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.agent.optimizer

    def train_dataloader(self) -> DataLoader:
        stream = RolloutStream(self.env_steps, int(self.agent.cfg.step_per_collect))
        return DataLoader(stream, batch_size=None, num_workers=0)

    def training_step(self, collect_index: int, batch_idx: int) -> None:
        opt = self.optimizers()
        chunk = self.agent.collect(int(self.agent.cfg.step_per_collect))
        self.agent.train_chunk(chunk, backward=self.manual_backward, step=opt.step)
        self.agent.maybe_evaluate(self.eval_every)


def fit_dqn(cfg: Any, seeds: list[int], env_steps: int, eval_every: int) -> DQNAgent:
    """len(seeds) runs through Lightning (CPU, no logger or checkpoints: the record keeps the curves)."""
    module = DQNModule(cfg, seeds, env_steps, eval_every)
    with warnings.catch_warnings(), quiet_lightning():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*IterableDataset.*")
        trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
        trainer.fit(module)
    return module.agent
