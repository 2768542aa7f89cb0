"""Passphrase sources and key files: vfs.passwords."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from vfs import passwords
from vfs.errors import KeyRequired, UsageError
from vfs.passwords import get_passphrase

ENV = ("VFS_PASSWORD_FILE", "VFS_PASSWORD_COMMAND", "VFS_PASSWORD", "CREDENTIALS_DIRECTORY")


def no_passphrase_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """No passphrase in the environment, and no terminal to ask on."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    no_passphrase_sources(monkeypatch)


def secret_file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    path.chmod(0o600)
    return path


def command(*argv: str) -> str:
    return shlex.join(argv)


def print_command(text: str, *, status: int = 0) -> str:
    code = f"import sys; sys.stdout.write({text!r}); sys.exit({status})"
    return command(sys.executable, "-c", code)


@pytest.fixture
def every_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sets every environment source, each to its own passphrase; returns the --password-file."""
    monkeypatch.setenv("VFS_PASSWORD_FILE", str(secret_file(tmp_path, "env-file", b"from env file\n")))
    monkeypatch.setenv("VFS_PASSWORD_COMMAND", print_command("from command\n"))
    monkeypatch.setenv("VFS_PASSWORD", "from env")
    creds = tmp_path / "creds"
    creds.mkdir()
    secret_file(creds, "vfs-password", b"from credential")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    return secret_file(tmp_path, "flag-file", b"from flag\r\n")


def test_sources_in_issue_order(every_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = get_passphrase(password_file=every_source)
    assert (got.secret, got.source) == (b"from flag", "--password-file")
    expected = [
        ("VFS_PASSWORD_FILE", b"from env file"),
        ("VFS_PASSWORD_COMMAND", b"from command"),
        ("VFS_PASSWORD", b"from env"),
        ("CREDENTIALS_DIRECTORY", b"from credential"),
    ]
    for name, secret in expected:
        got = get_passphrase()
        assert got.secret == secret
        monkeypatch.delenv(name)
    with pytest.raises(KeyRequired, match="no passphrase: give --password-file or --key-file"):
        get_passphrase()


def test_credentials_directory_without_the_credential_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(KeyRequired, match="no passphrase: give --password-file or --key-file"):
        get_passphrase()


def test_only_one_line_ending_is_cut(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "pw", b"  spaced out  \n")
    assert get_passphrase(password_file=path).secret == b"  spaced out  "
    path = secret_file(tmp_path, "pw2", b"two lines\n\n")
    assert get_passphrase(password_file=path).secret == b"two lines\n"


def test_empty_and_missing_sources_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="--password-file is empty"):
        get_passphrase(password_file=secret_file(tmp_path, "empty", b"\n"))
    with pytest.raises(UsageError, match="cannot read"):
        get_passphrase(password_file=tmp_path / "absent")
    monkeypatch.setenv("VFS_PASSWORD", "")
    with pytest.raises(UsageError, match="VFS_PASSWORD is empty"):
        get_passphrase()


def test_a_failing_command_is_one_line_without_its_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VFS_PASSWORD_COMMAND", print_command("s3cret-output", status=3))
    with pytest.raises(UsageError) as info:
        get_passphrase()
    message = str(info.value)
    assert "exit status 3" in message and "s3cret" not in message and "\n" not in message
    monkeypatch.setenv("VFS_PASSWORD_COMMAND", command("/nonexistent/pass-helper", "show", "s3cret"))
    with pytest.raises(UsageError, match="cannot run /nonexistent/pass-helper") as info:
        get_passphrase()
    assert "s3cret" not in str(info.value)


def test_prompt_on_a_terminal_asks_twice_for_a_new_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["typed", "typed", "typed", "typo"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(passwords.getpass, "getpass", fake_getpass)
    assert get_passphrase(new=True).secret == b"typed"
    assert len(prompts) == 2
    with pytest.raises(UsageError, match="do not match"):
        get_passphrase(new=True)
    answers = iter(["once"])
    got = get_passphrase()
    assert (got.secret, got.source) == (b"once", "the terminal")


def test_key_file_written_then_read(tmp_path: Path) -> None:
    path = tmp_path / "machine.key"
    made = passwords.write_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert made.secret.startswith(passwords.KEY_FILE_PREFIX) and len(made.secret) == 10 + 43
    read = get_passphrase(key_file=path)
    assert read.secret == made.secret
    assert passwords.write_key_file(tmp_path / "other").secret != made.secret
    with pytest.raises(UsageError, match="cannot create"):
        passwords.write_key_file(path)
    # A key file's content works through any passphrase source (a systemd credential, say).
    assert get_passphrase(password_file=path).secret == made.secret


def test_key_file_checks(tmp_path: Path) -> None:
    loose = tmp_path / "k"
    passwords.write_key_file(loose)
    loose.chmod(0o644)
    with pytest.raises(UsageError, match="readable by others"):
        get_passphrase(key_file=loose)
    with pytest.raises(UsageError, match="not a vfs key file"):
        get_passphrase(key_file=secret_file(tmp_path, "pw", b"just a passphrase\n"))
    with pytest.raises(UsageError, match="not both"):
        get_passphrase(key_file=tmp_path / "k", password_file=tmp_path / "pw")


def test_passphrase_repr_hides_the_secret(tmp_path: Path) -> None:
    got = get_passphrase(password_file=secret_file(tmp_path, "pw", b"hunter2"))
    assert "hunter2" not in repr(got) and "hunter2" not in str(got)
