"""The API and the mount agree: random puts, gets and snapshots through the API while the volume is
mounted; the mount shows the same content and history (FILE@N, /.snapshots/NAME) at once.

This is the one test of tests/api/ that mounts: the API writes through the daemon's control socket.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import vfs
from tests.conftest import shared_dir
from tests.fuse.conftest import Mount, new_mount
from vfs.api.volume import Volume

pytestmark = [pytest.mark.fuse, pytest.mark.slow]

FILES = ["a.txt", "b.bin", "d/c.txt", "d/e/f"]  # no name is another's directory
contents = st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"same"]),
                     st.builds(lambda n, b: bytes([b]) * n, st.integers(1, 300_000), st.integers(0, 255)))
_names = itertools.count()


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    with shared_dir(tmp_path_factory, "api-mount") as path, new_mount(path) as m:
        yield m


class ApiAgainstMount(RuleBasedStateMachine):
    mount: Mount
    vol: Volume

    def __init__(self) -> None:
        super().__init__()
        self.top = f"run{next(_names)}"  # each example in a directory of its own
        self.history: dict[str, list[bytes]] = {}  # path -> contents of versions 1, 2, ...
        self.latest: dict[str, bytes] = {}  # path -> content now
        self.snapshots: dict[str, dict[str, bytes]] = {}
        self.local = Path(tempfile.mkdtemp(prefix="vfs-api-model-"))

    def teardown(self) -> None:
        shutil.rmtree(self.local, ignore_errors=True)

    def _record(self, path: str, data: bytes) -> None:
        """A put of `data` at `path`: a new file made empty has no versions; unchanged content makes none."""
        if path not in self.latest:
            self.history[path] = [data] if data else []
        elif data != self.latest[path]:
            self.history[path].append(data)
        self.latest[path] = data

    @rule(path=st.sampled_from(FILES), data=contents)
    def write_bytes(self, path: str, data: bytes) -> None:
        self.vol.write_bytes(f"{self.top}/{path}", data)
        self._record(path, data)

    @rule(files=st.dictionaries(st.sampled_from(FILES), contents, min_size=1))
    def put_folder(self, files: dict[str, bytes]) -> None:
        folder = self.local / f"put{next(_names)}"
        for path, data in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
        self.vol.put(self.top, folder, checksum=True, progress=False)
        for path, data in files.items():
            self._record(path, data)

    @rule(path=st.sampled_from(FILES))
    def get(self, path: str) -> None:
        if path not in self.latest:
            assert not self.vol.exists(f"{self.top}/{path}")
            return
        assert self.vol.read_bytes(f"{self.top}/{path}") == self.latest[path]
        out = self.vol.get(f"{self.top}/{path}", self.local / "got" / path, progress=False)
        assert out.read_bytes() == self.latest[path]

    @rule()
    def snapshot(self) -> None:
        name = f"snap{next(_names)}"
        assert self.vol.snapshot(name) == name
        self.snapshots[name] = dict(self.latest)

    @invariant()
    def the_mount_shows_the_same_content_and_history(self) -> None:
        root = self.mount.path / self.top
        for path, versions in self.history.items():
            assert (root / path).read_bytes() == self.latest[path], path
            api = [v.version for v in self.vol.versions(f"{self.top}/{path}")]
            assert api == list(range(1, len(versions) + 1)), (path, api)
            assert sorted(int(n) for n in os.listdir(f"{root / path}@")) == api  # FILE@ lists them in the mount
            for n, data in enumerate(versions, 1):
                assert Path(f"{root / path}@{n}").read_bytes() == data, (path, n)
                assert self.vol.read_bytes(f"{self.top}/{path}@{n}") == data
        for name, files in self.snapshots.items():
            for path, data in files.items():
                assert (self.mount.path / ".snapshots" / name / self.top / path).read_bytes() == data
                assert self.vol.read_bytes(f"{self.top}/{path}@{name}") == data


def test_the_api_and_the_mount_agree(mounted: Mount) -> None:
    with vfs.open(mounted.store, writable=True) as vol:
        assert vol.mounted
        ApiAgainstMount.mount = mounted
        ApiAgainstMount.vol = vol
        run_state_machine_as_test(ApiAgainstMount, settings=settings(
            max_examples=30, stateful_step_count=8, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]))
    assert mounted.log_problems() == []


def test_a_restore_through_the_api_shows_in_the_mount_whatever_the_size(mounted: Mount) -> None:
    with vfs.open(mounted.store, writable=True) as vol:
        vol.write_text("restored.txt", "short")
        assert (mounted.path / "restored.txt").read_text() == "short"  # the kernel now caches it
        vol.write_text("restored.txt", "a longer second version")
        assert (mounted.path / "restored.txt").read_text() == "a longer second version"
        vol.restore("restored.txt@1")
        assert (mounted.path / "restored.txt").read_text() == "short"
