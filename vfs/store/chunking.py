"""Content-defined cut points (FastCDC), so that an insertion shifts only the chunks around it."""

from __future__ import annotations

from collections.abc import Iterator

from pyfastcdc import FastCDC

from vfs.config import StoreConfig


class Chunker:
    def __init__(self, config: StoreConfig, *, seed: int = 0) -> None:
        """`seed`: an encrypted volume's secret gear-table seed (0: the unseeded table), so that cut points,
        and the chunk sizes they leak, differ per volume (docs/design.md, "Encryption")."""
        self._config = config
        self._seed = seed

    def cut(self, buf: memoryview) -> Iterator[tuple[int, int]]:
        """Yield (offset, length) of each chunk of `buf`; a buffer below the minimum is one chunk."""
        n = len(buf)
        if n == 0:
            return
        if n <= self._config.chunk_min:
            yield 0, n
            return
        # FastCDC objects are not safe to share between threads; they are cheap to make.
        cdc = FastCDC(
            avg_size=self._config.chunk_avg,
            min_size=self._config.chunk_min,
            max_size=self._config.chunk_max,
            seed=self._seed,
        )
        for chunk in cdc.cut_buf(buf):
            yield chunk.offset, chunk.length
