"""Entry point of the `vfs` command: argument parsing, dispatch, and error reporting."""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from typing import Any, NoReturn

from vfs.errors import UsageError, VfsError
from vfs.log import setup_logging

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    """A parser whose argument errors are one line, as every other error (the usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(UsageError.exit_code, f"vfs: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from vfs.cli import (
        cmd_cat,
        cmd_diff,
        cmd_fsck,
        cmd_gc,
        cmd_init,
        cmd_install_units,
        cmd_log,
        cmd_mount,
        cmd_prune,
        cmd_restore,
        cmd_snapshot,
    )

    parser = _Parser(prog="vfs", description="A versioned, content-addressed FUSE filesystem.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action=_PrintVersion, help="print the version of vfs and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmd_init.register(sub)
    cmd_mount.register(sub)
    cmd_snapshot.register(sub)
    cmd_log.register(sub)
    cmd_diff.register(sub)
    cmd_restore.register(sub)
    cmd_cat.register(sub)
    from vfs.cli import cmd_clone, cmd_fetch, cmd_get, cmd_key, cmd_ls, cmd_put, cmd_remote, cmd_status, cmd_sync

    cmd_put.register(sub)
    cmd_get.register(sub)
    cmd_ls.register(sub)

    cmd_remote.register(sub)
    cmd_status.register(sub)
    cmd_sync.register(sub)
    cmd_clone.register(sub)
    cmd_fetch.register(sub)
    from vfs.cli import cmd_lease, cmd_pull, cmd_refresh

    cmd_pull.register(sub)
    cmd_refresh.register(sub)

    cmd_lease.register(sub)
    cmd_prune.register(sub)
    cmd_gc.register(sub)
    cmd_fsck.register(sub)
    cmd_key.register(sub)
    cmd_install_units.register(sub)
    return parser


class _PrintVersion(argparse.Action):
    """--version, looked up only when asked (reading the installed metadata costs every command time)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{parser.prog} {package_version()}")
        parser.exit()


def package_version() -> str:
    """The installed vfs distribution's version (pyproject.toml's, as pip installed it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vfs")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    # What the CLI and the daemon (started through here) create is their user's alone: stores, logs,
    # clones. The modes of files created inside a mount come from each request, not from this umask.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.WARNING)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Names are bytes: print one that is not UTF-8 (os.fsdecode's surrogate escapes) as the bytes it
        # is, as ls does, not as a UnicodeEncodeError.
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        result: int = args.run(args)
        return result
    except UsageError as e:
        parser.exit(e.exit_code, f"vfs: error: {e}\n")
    except VfsError as e:
        print(f"vfs: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
