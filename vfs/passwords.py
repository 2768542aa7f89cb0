"""Where an encrypted volume's passphrase comes from: flags, environment, systemd credentials, the terminal.

Sources, first match wins (issue 11's order, after restic's): `--key-file` or `--password-file` (not
both), `VFS_PASSWORD_FILE`, `VFS_PASSWORD_COMMAND` (a command, split like a shell would but run without
one, whose standard output is the passphrase), `VFS_PASSWORD`, `$CREDENTIALS_DIRECTORY/vfs-password`
(systemd's `LoadCredential=vfs-password:...`), and last a prompt on the terminal, asked twice when a
new passphrase is being set. One line ending is cut from what a file or command gives. A *key file* is
a passphrase vfs generated (`vfs-key-1:` and 32 random bytes in base64url), mode 0600, for machines
without a human; it opens its own key object like any passphrase, so it can be revoked alone.

A passphrase is never logged, echoed or put in an error message; a failing command's output is not
shown. Both faces read the sources here, and only when a store turns out encrypted: the CLI through
`vfs.cli.common.passphrase_of` (its flags), the Python API through `vfs.open` (its `password_file=`
and `key_file=` arguments). Where no source gives one and there is no terminal to ask on (a notebook,
a service), the error is `KeyRequired` naming the ways to give it, in the caller's words (`Wording`).
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hmac
import os
import secrets
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vfs.errors import KeyRequired, UsageError
from vfs.fsutil import PRIVATE_FILE, fsync_path

KEY_FILE_PREFIX = b"vfs-key-1:"
CREDENTIAL = "vfs-password"
_MAX_LEN = 4096  # bytes: longer is not a passphrase but a wrong file


@dataclass(frozen=True, slots=True)
class Wording:
    """What the caller's user calls the ways to give a passphrase, for messages."""

    password_file: str  # the option or argument naming a file that holds the passphrase
    key_file: str  # the one naming a key file
    ways: str  # every direct way, for the message when no source gives one


CLI = Wording("--password-file", "--key-file", "--password-file or --key-file")


@dataclass(frozen=True, slots=True)
class Passphrase:
    """A passphrase and where it came from (for messages; the secret itself is never shown)."""

    secret: bytes = field(repr=False)
    source: str


def get_passphrase(*, password_file: Path | None = None, key_file: Path | None = None, new: bool = False,
                   wording: Wording = CLI) -> Passphrase:
    """The passphrase from the first source that gives one (see the module docstring).

    Args:
        password_file: `--password-file` (the API's `password_file=`).
        key_file: `--key-file` (the API's `key_file=`).
        new: a passphrase is being set (`vfs init --encrypt`, `vfs key add`): a prompt asks twice.
        wording: what messages call the flags (the API names its arguments instead).

    Raises:
        UsageError: both files given, a source is unreadable, empty or failing.
        KeyRequired: no source gives one and there is no terminal to ask on.
    """
    if password_file is not None and key_file is not None:
        raise UsageError(f"give {wording.password_file} or {wording.key_file}, not both")
    if key_file is not None:
        return read_key_file(key_file)
    if password_file is not None:
        return _from_file(password_file, wording.password_file)
    env = os.environb
    if path := env.get(b"VFS_PASSWORD_FILE"):
        return _from_file(Path(os.fsdecode(path)), "VFS_PASSWORD_FILE")
    if command := os.environ.get("VFS_PASSWORD_COMMAND"):
        return _from_command(command)
    if (value := env.get(b"VFS_PASSWORD")) is not None:
        return _checked(value, "VFS_PASSWORD")
    if (creds := env.get(b"CREDENTIALS_DIRECTORY")) and (Path(os.fsdecode(creds)) / CREDENTIAL).exists():
        return _from_file(Path(os.fsdecode(creds)) / CREDENTIAL, f"systemd credential {CREDENTIAL}")
    if not sys.stdin.isatty():
        raise KeyRequired(
            f"no passphrase: give {wording.ways}, set VFS_PASSWORD_FILE, VFS_PASSWORD_COMMAND or VFS_PASSWORD, "
            f"pass the systemd credential {CREDENTIAL}, or run on a terminal"
        )
    return _prompt(new)


def get_new_passphrase(*, password_file: Path | None = None, key_file: Path | None = None) -> Passphrase:
    """A passphrase being added to a volume (`vfs key add`, `passwd`): from `password_file`, from the key
    file `key_file` (created when it does not exist yet), else asked twice on the terminal. The
    environment's sources are not read: they give the passphrase that opens the volume now.
    """
    if password_file is not None and key_file is not None:
        raise UsageError("give --new-password-file or --new-key-file, not both")
    if key_file is not None:
        return key_file_or_new(key_file)
    if password_file is not None:
        return _from_file(password_file, "--new-password-file")
    if not sys.stdin.isatty():
        raise UsageError("no new passphrase: give --new-password-file or --new-key-file, or run on a terminal")
    return _prompt(True)


def key_file_or_new(path: Path) -> Passphrase:
    """The key file at `path`, made first if nothing is there."""
    return read_key_file(path) if os.path.lexists(path) else write_key_file(path)


def _strip_line_end(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


def _checked(secret: bytes, source: str) -> Passphrase:
    if not secret:
        raise UsageError(f"the passphrase from {source} is empty")
    if len(secret) > _MAX_LEN:
        raise UsageError(f"the passphrase from {source} is longer than {_MAX_LEN} bytes")
    return Passphrase(secret, source)


def _read_small(path: Path, source: str) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(_MAX_LEN + 3)
    except OSError as e:
        raise UsageError(f"{source}: cannot read {path}: {e.strerror}") from None


def _from_file(path: Path, source: str) -> Passphrase:
    return _checked(_strip_line_end(_read_small(path, source)), source)


def _from_command(command: str) -> Passphrase:
    source = "VFS_PASSWORD_COMMAND"
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise UsageError(f"{source} cannot be split into words: {e}") from None
    if not argv:
        raise UsageError(f"{source} is empty")
    try:
        # stdin and stderr stay the user's (a pinentry may ask; the command's errors show);
        # stdout is the secret and is never shown, not even when the command fails.
        done = subprocess.run(argv, stdout=subprocess.PIPE, check=False)
    except OSError as e:
        raise UsageError(f"{source}: cannot run {argv[0]}: {e.strerror}") from None
    if done.returncode != 0:
        raise UsageError(f"{source} failed (exit status {done.returncode})")
    return _checked(_strip_line_end(done.stdout), source)


def _prompt(new: bool) -> Passphrase:
    first = getpass.getpass("New passphrase: " if new else "Passphrase: ").encode()
    if new:
        again = getpass.getpass("Repeat the passphrase: ").encode()
        if not hmac.compare_digest(first, again):
            raise UsageError("the passphrases do not match")
    return _checked(first, "the terminal")


def read_key_file(path: Path) -> Passphrase:
    """The passphrase a key file holds (its whole first line).

    Raises:
        UsageError: unreadable, readable by others than its owner, or not a vfs key file.
    """
    source = f"key file {path}"
    try:
        mode = path.stat().st_mode
    except OSError as e:
        raise UsageError(f"{source}: {e.strerror}") from None
    if mode & 0o077:
        raise UsageError(f"{source} is readable by others (mode {stat.S_IMODE(mode):04o}): chmod 600 it")
    line = _strip_line_end(_read_small(path, source))
    try:
        body = line.removeprefix(KEY_FILE_PREFIX)
        ok = line.startswith(KEY_FILE_PREFIX) and len(base64.urlsafe_b64decode(body + b"=")) == 32
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"{path} is not a vfs key file")
    return Passphrase(line, source)


def write_key_file(path: Path) -> Passphrase:
    """Create a new key file at `path` (mode 0600; refused if `path` exists) and return its passphrase."""
    line = KEY_FILE_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    except OSError as e:
        raise UsageError(f"cannot create key file {path}: {e.strerror}") from None
    try:
        os.fchmod(fd, PRIVATE_FILE)
        os.write(fd, line + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_path(path.parent, directory=True)
    return Passphrase(line, f"key file {path}")
