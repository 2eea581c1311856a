"""Parameter sets the benchmark steps: the tensor shapes of small GPTs (weights as nn.Linear stores them)."""

from __future__ import annotations

__all__ = ["SHAPE_SETS", "gpt_shapes", "shape_set"]


def gpt_shapes(n_layer: int, n_embd: int, vocab: int, block: int) -> list[tuple[int, ...]]:
    """A GPT-2 style model: token and position embeddings (head tied), per block 2 LayerNorms, qkv, attention out,
    MLP in/out (weights and biases: 12 tensors), a final LayerNorm."""
    d = n_embd
    shapes: list[tuple[int, ...]] = [(vocab, d), (block, d)]
    for _ in range(n_layer):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return shapes + [(d,), (d,)]


SHAPE_SETS: dict[str, list[tuple[int, ...]]] = {
    # 3.3M parameters in 52 tensors: 4 blocks of width 256, vocabulary 512, context 64.
    "tiny": gpt_shapes(4, 256, 512, 64),
    # GPT-2 small: 124M parameters in 148 tensors.
    "gpt2-small": gpt_shapes(12, 768, 50257, 1024),
    # Poincaré embedding tables of the WordNet nouns (82,115 rows; d = 5 as the paper, d = 10).
    "wordnet-5": [(82_115, 5)],
    "wordnet-10": [(82_115, 10)],
    # For tests: 16 tensors, 9k parameters.
    "micro": gpt_shapes(1, 16, 64, 16),
}


def shape_set(name: str) -> list[tuple[int, ...]]:
    if name not in SHAPE_SETS:
        raise ValueError(f"shapes must be one of {list(SHAPE_SETS)}, got {name!r}")
    return SHAPE_SETS[name]
