"""Minibatches drawn from one cluster at a time (cluster multi-momentum), and the dataset wrapper that tells
the training step which cluster a batch came from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from common.data.seeding import generator_for


class ClusterBatchSampler(Sampler[list[int]]):
    """Each epoch: shuffle every cluster's examples, cut each cluster into batches of ``batch_size`` (a cluster's
    last, smaller batch is kept unless ``drop_last``), then shuffle the order of all batches. Every batch holds
    examples of one cluster only; every example appears once per epoch. With one cluster this is a plain
    shuffled batch sampler. The order is a function of (seed, epoch), so runs and resumes repeat it.
    """

    def __init__(self, cluster_ids: torch.Tensor, batch_size: int, seed: int = 0, drop_last: bool = False) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        ids = torch.as_tensor(cluster_ids, dtype=torch.int64)
        if ids.dim() != 1 or len(ids) == 0:
            raise ValueError(f"cluster_ids must be a non-empty 1-D tensor, got shape {list(ids.shape)}")
        if int(ids.min()) < 0:
            raise ValueError("cluster_ids must be >= 0")
        self.cluster_ids, self.batch_size, self.seed, self.drop_last = ids, batch_size, seed, drop_last
        self.members = [(ids == k).nonzero().flatten() for k in range(int(ids.max()) + 1)]
        self.epoch = 0

    @property
    def num_clusters(self) -> int:
        return len(self.members)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self, epoch: int) -> list[list[int]]:
        gen = generator_for(self.seed, epoch)
        batches: list[list[int]] = []
        for members in self.members:
            shuffled = members[torch.randperm(len(members), generator=gen)]
            for start in range(0, len(shuffled), self.batch_size):
                chunk = shuffled[start:start + self.batch_size]
                if len(chunk) == self.batch_size or (len(chunk) and not self.drop_last):
                    batches.append(chunk.tolist())
        order = torch.randperm(len(batches), generator=gen).tolist()
        return [batches[i] for i in order]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches(self.epoch)
        self.epoch += 1  # a DataLoader re-iterates once per epoch
        return iter(batches)

    def __len__(self) -> int:
        full = [len(m) // self.batch_size + (0 if self.drop_last or len(m) % self.batch_size == 0 else 1)
                for m in self.members]
        return sum(full)


class WithClusters(Dataset):
    """Wraps a batched dataset (``__getitems__``) so each batch also returns its examples' cluster ids:
    ``(*dataset batch, cluster_ids[positions])``."""

    def __init__(self, dataset: Any, cluster_ids: torch.Tensor) -> None:
        if len(cluster_ids) != len(dataset):
            raise ValueError(f"cluster_ids has {len(cluster_ids)} entries for {len(dataset)} examples")
        self.dataset, self.cluster_ids = dataset, torch.as_tensor(cluster_ids, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, positions: list[int]) -> tuple[torch.Tensor, ...]:
        batch = self.dataset.__getitems__(positions)
        return (*batch, self.cluster_ids[torch.as_tensor(positions, dtype=torch.int64)])

    def __getitem__(self, position: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.__getitems__([position]))
