"""Shared test settings. Tiny models run fastest on one thread, and a 2-core CI box shared with other
processes thrashes with two, so tests pin torch to one thread."""

import os

os.environ.setdefault("PYTHONHASHSEED", "0")

import torch  # noqa: E402

torch.set_num_threads(1)
