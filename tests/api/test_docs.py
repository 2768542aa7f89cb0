"""Each job docs/python.md shows is run here, as written there: as user nobody, with no mount anywhere
(the remote ones against a moto server on 127.0.0.1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.conftest import run_as_nobody

DOC = Path(__file__).resolve().parents[2] / "docs" / "python.md"
JOBS = [
    "Upload a folder as a version; list and download versions",
    "Store and load by content hash; share a reference",
    "`name@version`, and the latest by default",
    "Everything stored in a time range",
]
REMOTE_JOBS = [
    "Clone a remote partially and fetch only what is needed, with progress",
    "Read what a workstation writes from a notebook",
]

PRELUDE = """
from pathlib import Path
import os
from vfs.compose import init_repository

assert os.getuid() != 0
STORE = str(Path("store").absolute())
init_repository(STORE).close()
folder = Path("folder")
folder.mkdir()
(folder / "params.json").write_text('{"lr": 0.01}')
(folder / "data.csv").write_text("a,b\\n1,2\\n")
(folder / "readme.txt").write_text("an experiment")
"""

# The workstation: a store with the remote, which has published `folder` as "experiment".
REMOTE_PRELUDE = """
import vfs
from vfs.config import RemoteConfig

REMOTE, ENDPOINT = os.environ["DOC_REMOTE"], os.environ["DOC_ENDPOINT"]
WORKSTATION = str(Path("workstation").absolute())
with init_repository(WORKSTATION) as repo:
    repo.catalog.set_meta("remote", RemoteConfig(REMOTE, ENDPOINT).to_json())
with vfs.open(WORKSTATION, writable=True) as ws:
    ws.put("experiment", folder, progress=False)
    ws.sync(progress=False)
"""


def blocks(heading: str) -> list[str]:
    """The ```python blocks of the section `heading` of docs/python.md."""
    sections = re.split(r"^## ", DOC.read_text(), flags=re.MULTILINE)
    section = next(s for s in sections if s.startswith(heading))
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.parametrize("job", JOBS)
def test_each_job_of_the_docs_runs_as_a_user_without_a_mount(job: str, nobody_dir: Path) -> None:
    code = blocks(job)
    assert code, f"docs/python.md has no code for {job!r}"
    done = run_as_nobody(PRELUDE + "\n".join(code) + "\nprint('JOB DONE')\n", nobody_dir)
    assert "JOB DONE" in done.stdout
    assert not (nobody_dir / "store" / "control.sock").exists()  # no daemon was involved


@pytest.mark.s3
@pytest.mark.slow
@pytest.mark.parametrize("job", REMOTE_JOBS)
def test_each_remote_job_of_the_docs_runs_as_a_user_without_a_mount(
    job: str, nobody_dir: Path, s3_bucket: str, moto_endpoint: str,
) -> None:
    code = blocks(job)
    assert code, f"docs/python.md has no code for {job!r}"
    env = {"DOC_REMOTE": f"s3://{s3_bucket}/volume", "DOC_ENDPOINT": moto_endpoint}
    done = run_as_nobody(PRELUDE + REMOTE_PRELUDE + "\n".join(code) + "\nprint('JOB DONE')\n", nobody_dir, env=env)
    assert "JOB DONE" in done.stdout
    assert not list(nobody_dir.glob("**/control.sock"))  # no daemon was involved
