"""IngestStream: a file ingested while it is appended to gives what ingesting the finished file gives."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from vfs.config import MiB, StoreConfig
from vfs.store import ChunkStore, StreamAbandoned


def _file(path: Path, size: int) -> bytes:
    data = random.Random(size).randbytes(size)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("steps", [1, 7])
def test_a_stream_cuts_as_an_ingest_of_the_whole_file(tmp_path: Path, steps: int) -> None:
    store = ChunkStore(tmp_path / "packs", StoreConfig())
    try:
        data = _file(tmp_path / "f", 19 * MiB + 777)
        stream = store.stream(os.open(tmp_path / "f", os.O_RDONLY), lambda cid: False)
        for i in range(1, steps + 1):  # in one step, finish mostly comes before the thread read anything
            stream.advance(len(data) * i // steps)
        streamed = stream.finish(len(data))
        whole = store.ingest(tmp_path / "f", lambda cid: False)
        assert (streamed.size, streamed.content_hash, streamed.chunks) == (whole.size, whole.content_hash, whole.chunks)
        assert b"".join(store.read_chunks(streamed.new)) == data
    finally:
        store.close()


def test_a_stream_not_given_every_byte_or_abandoned_fails(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "packs", StoreConfig())
    try:
        data = _file(tmp_path / "f", 3 * MiB)
        stream = store.stream(os.open(tmp_path / "f", os.O_RDONLY), lambda cid: False)
        stream.advance(MiB)
        with pytest.raises(StreamAbandoned):
            stream.finish(len(data))
        stream = store.stream(os.open(tmp_path / "f", os.O_RDONLY), lambda cid: False)
        stream.advance(len(data))
        stream.abandon()
        with pytest.raises(StreamAbandoned):
            stream.finish(len(data))
    finally:
        store.close()
