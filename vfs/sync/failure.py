"""Why sync fails, kept in the store (`STORE/sync/failure.json`) until a round succeeds.

The uploader writes it when a round fails (and clears it when one succeeds), so that `vfs status` of
an unmounted store can say what the last sync met: the failure's message, since when, how many
attempts failed, and whether it was a conflict (another store wrote the remote).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from vfs.backend import Failure
from vfs.fsutil import private_dir, replace_file
from vfs.sync import checkpoint


def failure_file(store: Path) -> Path:
    return store / checkpoint.STATE_DIR / "failure.json"


def save_failure(store: Path, failure: Failure | None, *, conflict: bool = False) -> None:
    """Keep why sync fails (None: it works again) for `vfs status` of the store while unmounted."""
    path = failure_file(store)
    if failure is None:
        path.unlink(missing_ok=True)
        return
    private_dir(path.parent)
    replace_file(path, json.dumps({**asdict(failure), "conflict": conflict}).encode())


def load_failure(store: Path) -> tuple[Failure | None, bool]:
    """(the failure the last sync of the store met, whether it is a conflict); (None, False) if it worked."""
    try:
        data = json.loads(failure_file(store).read_text())
        failure = Failure(str(data["message"]), int(data["since_ns"]), int(data["attempts"]),
                          bool(data.get("permanent", False)))  # written before vfs said which were permanent
        return failure, bool(data["conflict"])
    except FileNotFoundError:
        return None, False
    except (ValueError, KeyError, TypeError) as e:  # a damaged file must not break `vfs status`
        return Failure(f"unreadable {failure_file(store)}: {e}", 0, 0), False
