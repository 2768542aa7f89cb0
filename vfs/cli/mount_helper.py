"""The mount(8) helper for type fuse.vfs: `mount.fuse.vfs STORE MOUNTPOINT [-o OPTIONS] [-n] [-s] [-f] [-v]`.

mount(8) runs /sbin/mount.fuse.vfs for an /etc/fstab line such as `STORE /mnt/data fuse.vfs
defaults,_netdev 0 0` (installed by `vfs install-units`). Options meant for mount(8) itself or for
systemd (defaults, rw, auto, _netdev, nofail, x-*, ...) are ignored; `version_interval=S` is passed
on to `vfs mount`; anything else is refused with a message, as mount(8) helpers do (exit 1).
"""

from __future__ import annotations

import sys

from vfs.cli.main import main as vfs_main

_IGNORED = {"defaults", "rw", "auto", "noauto", "user", "nouser", "users", "owner", "_netdev", "nofail", "dev",
            "nodev", "suid", "nosuid", "exec", "noexec", "async", "sync", "atime", "noatime", "relatime",
            "diratime", "nodiratime", "loud", "silent", "allow_other", "default_permissions"}


def translate(argv: list[str]) -> list[str]:
    """The `vfs mount` arguments for mount(8)'s helper arguments `argv` (ValueError if unsupported)."""
    positional: list[str] = []
    options: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "-o":
            options += next(it, "").split(",")
        elif arg.startswith("-o"):
            options += arg[2:].split(",")
        elif arg == "-t":
            next(it, None)  # the type (fuse.vfs)
        elif arg in ("-n", "-s", "-f", "-v", "-r", "-w"):
            if arg == "-r":
                raise ValueError("read-only mounts are not supported")
        else:
            positional.append(arg)
    if len(positional) != 2:
        raise ValueError("usage: mount.fuse.vfs STORE MOUNTPOINT [-o OPTIONS]")
    extra: list[str] = []
    for opt in filter(None, options):
        key, _, value = opt.partition("=")
        if key == "version_interval":
            extra += ["--version-interval", value]
        elif key == "ro":
            raise ValueError("read-only mounts are not supported")
        elif key not in _IGNORED and not key.startswith(("x-", "comment=")) and not key.startswith("comment"):
            raise ValueError(f"unknown mount option {opt!r}")
    return ["mount", positional[0], positional[1], *extra]


def main(argv: list[str] | None = None) -> int:
    try:
        args = translate(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"mount.fuse.vfs: {e}", file=sys.stderr)
        return 1
    return vfs_main(args)


if __name__ == "__main__":
    sys.exit(main())
