"""`vfs.open` and `vfs.load`: a location (a store directory or `s3://BUCKET/PREFIX`) to a `Volume`."""

from __future__ import annotations

import os

from vfs.api.location import is_remote, store_directory
from vfs.api.remote import open_remote
from vfs.api.urls import parse_url
from vfs.api.volume import LocalPath, Unlock, Volume
from vfs.errors import UsageError


def open(location: str | os.PathLike[str] | None = None, *, writable: bool = False, endpoint_url: str | None = None,
         cache_dir: str | os.PathLike[str] | None = None, password: str | bytes | None = None,
         password_file: LocalPath | None = None, key_file: LocalPath | None = None) -> Volume:
    """Open a vfs volume: `with vfs.open("~/stores/work", writable=True) as vol: vol.put("data", "./data")`.

    Args:
        location: a store directory, mounted or not (None: $VFS_HOME or ~/.local/share/vfs/default), or
            a remote volume `s3://BUCKET/PREFIX`: read through a lazy clone in `cache_dir` that fetches
            only what is read, at the volume's newest state (`refresh()` brings a newer one); with
            `writable`, as the volume's writer (see `vfs.api.remote.open_remote`).
        writable: allow changes; a mounted store is changed through its daemon, an unmounted one with
            its lock held for each change, a remote one by taking its writer lease.
        endpoint_url, cache_dir: for `s3://` locations: the S3-compatible endpoint (None: AWS), and the
            directory data is cached in (None: ~/.cache/vfs/follow/BUCKET_PREFIX, as `vfs mount --follow`).
        password: the passphrase (or a key file's content) of an encrypted volume; volumes that are not
            encrypted ignore it, as they ignore the rest.
        password_file, key_file: a file holding the passphrase; a key file (`vfs key add --new-key-file`).
            Without any of these three, an encrypted volume's passphrase comes from where the CLI finds
            it: $VFS_PASSWORD_FILE, $VFS_PASSWORD_COMMAND, $VFS_PASSWORD, the systemd credential
            vfs-password, else a prompt, but only when standard input is a terminal.

    Raises:
        NotAStore: no store there. UsageError: a location of another kind. For `s3://`: see `open_remote`.
        KeyRequired: an encrypted volume and no passphrase found (the message says where to give one).
        WrongPassphrase: the passphrase opens none of the volume's keys.
    """
    if is_remote(location):
        assert isinstance(location, str)
        return open_remote(location, writable=writable, endpoint_url=endpoint_url, cache_dir=cache_dir,
                           passphrase=Unlock(location, password, password_file, key_file))
    store = store_directory(location)
    if endpoint_url is not None or cache_dir is not None:
        raise UsageError("endpoint_url and cache_dir apply to s3:// locations only")
    return Volume(store, writable=writable, password=password, password_file=password_file, key_file=key_file)


def load(url: str, *, location: str | os.PathLike[str] | None = None, password: str | bytes | None = None,
         password_file: LocalPath | None = None, key_file: LocalPath | None = None, endpoint_url: str | None = None,
         cache_dir: str | os.PathLike[str] | None = None) -> bytes:
    """The content a reference from `Volume.url` names (`blake3://HEX/NAME`), from the volume at `location`
    (a store directory, None: $VFS_HOME or ~/.local/share/vfs/default; or `s3://BUCKET/PREFIX` with the
    `endpoint_url` and `cache_dir` of `open`), which must hold that content; an encrypted one is unlocked
    as `open` does.

    Raises:
        UsageError: not such a reference. NoSuchPath: the volume does not hold that content.
    """
    content_hash, _ = parse_url(url)
    with open(location, password=password, password_file=password_file, key_file=key_file,
              endpoint_url=endpoint_url, cache_dir=cache_dir) as vol:
        return vol.read_bytes(content_hash)


__all__ = ["load", "open"]
