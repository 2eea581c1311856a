"""Fashion-MNIST for the VR claims: optional symmetric label noise on the training labels, optional label
clusters with one-cluster minibatches, and the whole training set as tensors (full gradients, full-pass loss)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from common.data.cluster_sampler import ClusterBatchSampler, WithClusters
from common.data.fashion_mnist import FashionMNISTDataModule, ImageBatches, load_fashion_mnist
from common.data.label_noise import symmetric_label_noise
from common.errors import ConfigError

CLUSTERINGS = ("none", "labels")


def _passthrough(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return batch


class VRFashionMNIST(FashionMNISTDataModule):
    """Training batches are ``(x, y, cluster)``; ``clusters="labels"`` draws every minibatch from one observed
    class (cluster multi-momentum), ``"none"`` is one cluster (plain shuffled minibatches). ``label_noise`` moves
    that fraction of the *training* labels to another class (validation and test labels stay clean); clusters
    follow the observed, noisy labels."""

    def __init__(self, *, clusters: str = "none", label_noise: float = 0.0, noise_seed: int = 0,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if clusters not in CLUSTERINGS:
            raise ConfigError(f"clusters must be one of {list(CLUSTERINGS)}, got {clusters!r}")
        if not 0.0 <= float(label_noise) < 1.0:
            raise ConfigError(f"label_noise must be in [0, 1), got {label_noise!r}")
        self.clusters, self.label_noise, self.noise_seed = clusters, float(label_noise), noise_seed
        self._cluster_ids: torch.Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._sets:
            return
        super().setup(stage)
        train = self._sets["train"]
        labels = train.labels
        if self.label_noise > 0:
            labels = train.labels.clone()
            labels[train.indices] = symmetric_label_noise(train.labels[train.indices], self.label_noise,
                                                          self.num_classes, self.noise_seed)
            self._sets["train"] = ImageBatches(train.images, labels, train.indices, pad_to=self.pad_to,
                                               augment=self.augment, seed=self.seed)
        observed = labels[train.indices]
        self._cluster_ids = observed.clone() if self.clusters == "labels" else torch.zeros_like(observed)

    @property
    def num_clusters(self) -> int:
        self.setup()
        assert self._cluster_ids is not None
        return int(self._cluster_ids.max()) + 1

    def cluster_weights(self) -> list[float]:
        """Cluster priors n_k / n of the training set."""
        self.setup()
        assert self._cluster_ids is not None
        counts = torch.bincount(self._cluster_ids, minlength=self.num_clusters).double()
        return (counts / counts.sum()).tolist()

    def train_dataloader(self) -> DataLoader:
        self.setup()
        assert self._cluster_ids is not None
        sampler = ClusterBatchSampler(self._cluster_ids, self.batch_size, seed=self.seed)
        return DataLoader(WithClusters(self._dataset("train"), self._cluster_ids), batch_sampler=sampler,
                          collate_fn=_passthrough, num_workers=self.num_workers)

    def tensors(self, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split as (x, y) tensors (training labels as observed, i.e. noisy when noise is on)."""
        data = self._dataset(split)
        return data.__getitems__(list(range(len(data))))

    def clean_train_labels(self) -> torch.Tensor:
        """The training examples' true labels (the full-pass train loss of the noisy runs is also reported on these)."""
        data = self._dataset("train")
        _, y = load_fashion_mnist("train", self.root)
        return y[data.indices]
