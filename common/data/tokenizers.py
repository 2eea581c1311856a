"""Byte- and character-level tokenizers, vectorised with numpy so a 13 MB corpus encodes in well under 1 s."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

UNK = 0
UNK_CHAR = "\ufffd"


def _as_numpy(ids: torch.Tensor | Sequence[int] | Iterable[int]) -> np.ndarray:
    if isinstance(ids, torch.Tensor):
        return ids.detach().cpu().to(torch.int64).numpy().reshape(-1)
    return np.asarray(list(ids), dtype=np.int64).reshape(-1)


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocabulary 256, lossless, needs no fitting to a corpus."""

    vocab_size = 256

    def encode(self, text: str) -> torch.Tensor:
        """int64 tensor of the UTF-8 bytes of ``text``."""
        return torch.from_numpy(np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64))

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Bytes back to text; an id sequence cut mid-character decodes with U+FFFD there."""
        arr = _as_numpy(ids)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"byte token ids must be in 0..255, got {arr.min()}..{arr.max()}")
        return arr.astype(np.uint8).tobytes().decode("utf-8", errors="replace")


class CharTokenizer:
    """Unicode characters as tokens; id 0 is <unk> (chars not seen when the vocabulary was built).

    ``chars`` are the known characters; they get ids 1..len(chars) in sorted order, so the mapping
    depends only on the character set, not on the order the corpus was read in.
    """

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars: list[str] = sorted(set(chars))
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("CharTokenizer vocabulary entries must be single characters")
        codepoints = np.asarray([ord(c) for c in self.chars], dtype=np.int64)
        # Lookup table codepoint -> id; its last slot (past every known codepoint) holds <unk>.
        self._lut = np.zeros(int(codepoints.max(initial=-1)) + 2, dtype=np.int64)
        self._lut[codepoints] = np.arange(1, len(codepoints) + 1)
        self.vocab_size = len(self.chars) + 1

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """Vocabulary = the sorted set of characters of ``text`` (plus <unk> at id 0)."""
        return cls(set(text))

    def encode(self, text: str) -> torch.Tensor:
        """int64 tensor of ids; unknown characters map to 0 (<unk>)."""
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        return torch.from_numpy(self._lut[np.minimum(cps, len(self._lut) - 1)])

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Ids back to text; <unk> decodes to U+FFFD."""
        arr = _as_numpy(ids)
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            raise ValueError(f"char token ids must be in 0..{self.vocab_size - 1}, "
                             f"got {arr.min()}..{arr.max()}")
        table = [UNK_CHAR, *self.chars]
        return "".join(table[i] for i in arr.tolist())
