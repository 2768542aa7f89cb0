"""The `vfs://` fsspec filesystem: fsspec's own abstract test suite, and pandas reading a past version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.tests.abstract import AbstractFixtures
from fsspec.tests.abstract.copy import AbstractCopyTests
from fsspec.tests.abstract.get import AbstractGetTests
from fsspec.tests.abstract.open import AbstractOpenTests
from fsspec.tests.abstract.pipe import AbstractPipeTests
from fsspec.tests.abstract.put import AbstractPutTests

import vfs
from vfs.api.fsspec_fs import VfsFileSystem
from vfs.repository import Repository


class VfsFixtures(AbstractFixtures):  # type: ignore[misc]
    @pytest.fixture
    def fs(self, tmp_path: Path) -> Iterator[VfsFileSystem]:
        store = tmp_path / "store"
        Repository.init(store).close()
        fs = VfsFileSystem(store, writable=True, skip_instance_cache=True)
        yield fs
        fs.volume.close()

    @pytest.fixture
    def fs_path(self) -> str:
        return "root"

    @pytest.fixture
    def fs_join(self) -> Any:
        # '/'-joined, a trailing '/' of the last part kept: the tests mean "into a directory" by it.
        return lambda *parts: "/".join([p.rstrip("/") for p in parts[:-1] if p] + [parts[-1]])


class TestVfsGet(AbstractGetTests, VfsFixtures):  # type: ignore[misc]
    pass


class TestVfsPut(AbstractPutTests, VfsFixtures):  # type: ignore[misc]
    pass


class TestVfsCopy(AbstractCopyTests, VfsFixtures):  # type: ignore[misc]
    pass


class TestVfsOpen(AbstractOpenTests, VfsFixtures):  # type: ignore[misc]
    pass


class TestVfsPipe(AbstractPipeTests, VfsFixtures):  # type: ignore[misc]
    pass


def test_the_protocol_is_registered_by_its_entry_point(store: Path) -> None:
    fs = fsspec.filesystem("vfs", location=str(store))
    assert isinstance(fs, VfsFileSystem)
    assert fs.ls("") == []


def test_pandas_reads_a_csv_at_a_past_version(store: Path) -> None:
    pd = pytest.importorskip("pandas")
    with vfs.open(store, writable=True) as vol:
        vol.write_text("results/run1.csv", "step,loss\n1,0.9\n")
        vol.snapshot("baseline")
        vol.write_text("results/run1.csv", "step,loss\n1,0.9\n2,0.5\n")
    options = {"location": str(store)}
    now = pd.read_csv("vfs://results/run1.csv", storage_options=options)
    first = pd.read_csv("vfs://results/run1.csv@1", storage_options=options)
    baseline = pd.read_csv("vfs://results/run1.csv@baseline", storage_options=options)
    assert list(now["loss"]) == [0.9, 0.5]
    assert list(first["loss"]) == [0.9] and list(baseline["loss"]) == [0.9]
    with fsspec.open("vfs://results/run1.csv@1", "rb", location=str(store)) as f:
        f.seek(5)
        assert f.read(4) == b"loss"


def test_fsspec_errors_are_what_data_tools_expect(store: Path) -> None:
    fs = VfsFileSystem(store, skip_instance_cache=True)
    with pytest.raises(FileNotFoundError):
        fs.info("nope")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("nope@3")
    with pytest.raises(PermissionError, match="opened read-only"):
        fs.pipe_file("x", b"y")
    fs.volume.close()
