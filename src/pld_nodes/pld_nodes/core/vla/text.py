"""Offline instruction tokenizer and the learned text encoder of the built-in VLA.

Real VLAs embed language with a pretrained LM; the built-in VLA must run in CI without
downloads, so instructions become hashed word and character n-gram ids (feature hashing) that
a learned embedding bag (``model.TextEncoder``) turns into one vector. Hashing uses CRC32,
never Python's salted ``hash()``, so the same instruction gives the same ids on every machine
and every run.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

PAD_ID = 0
_WORD_RE = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class TokenizerConfig:
    """Hashed tokenizer settings; part of the model config because ids index the embedding.

    Attributes:
        num_buckets: hash buckets; ids are in ``[1, num_buckets]`` (0 is padding).
        max_tokens: fixed sequence length; longer instructions are truncated, shorter padded.
        ngram_sizes: character n-gram lengths taken from each ``<word>`` (with boundary marks).
    """

    num_buckets: int = 4096
    max_tokens: int = 48
    ngram_sizes: tuple[int, ...] = (3,)

    def __post_init__(self) -> None:
        if self.num_buckets < 1:
            raise ValueError(f"num_buckets must be >= 1, got {self.num_buckets!r}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens!r}")
        if any(n < 1 for n in self.ngram_sizes):
            raise ValueError(f"ngram_sizes must all be >= 1, got {self.ngram_sizes!r}")


class HashTokenizer:
    """Maps an instruction to ``max_tokens`` int64 ids: word ids first, then char n-grams."""

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        self.config = config or TokenizerConfig()
        self._cache: dict[str, np.ndarray] = {}

    def _bucket(self, kind: str, piece: str) -> int:
        digest = zlib.crc32(f"{kind}:{piece}".encode())
        return 1 + digest % self.config.num_buckets

    def pieces(self, text: str) -> list[str]:
        """The ``kind:piece`` strings that are hashed, in order (for debugging collisions)."""
        words = _WORD_RE.findall(text.lower())
        out = [f"w:{w}" for w in words]
        for n in self.config.ngram_sizes:
            for w in words:
                marked = f"<{w}>"
                out.extend(f"c{n}:{marked[i : i + n]}" for i in range(max(1, len(marked) - n + 1)))
        return out

    def encode(self, text: str) -> np.ndarray:
        """Ids of shape (max_tokens,), int64, padded with ``PAD_ID``; cached per instruction."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached.copy()
        ids = np.full(self.config.max_tokens, PAD_ID, dtype=np.int64)
        hashed = [self._bucket(*p.split(":", 1)) for p in self.pieces(text)]
        hashed = hashed[: self.config.max_tokens]
        ids[: len(hashed)] = hashed
        if len(self._cache) < 1024:
            self._cache[text] = ids.copy()
        return ids

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """Ids of shape (len(texts), max_tokens)."""
        return np.stack([self.encode(t) for t in texts]) if texts else np.zeros((0, 0), np.int64)
