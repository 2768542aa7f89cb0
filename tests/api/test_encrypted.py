"""The Volume API on an encrypted store (no mount): the passphrase from `password=` or from where the CLI
finds it (vfs.passwords), a prompt only on a terminal, and clear errors when it is missing or wrong."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

import vfs
from tests.test_passwords import no_passphrase_sources
from vfs import passwords
from vfs.errors import KeyRequired, UsageError, WrongPassphrase
from vfs.repository import Repository
from vfs.store.keys import KdfParams

PASSWORD = "a volume's passphrase"


@pytest.fixture(autouse=True)
def no_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """No passphrase in the environment, no terminal, and a prompt that fails the test if it is shown."""
    no_passphrase_sources(monkeypatch)

    def no_prompt(prompt: str = "") -> str:
        raise AssertionError(f"prompted ({prompt!r}) without a terminal")

    monkeypatch.setattr(passwords.getpass, "getpass", no_prompt)


def make_store(path: Path, secret: bytes) -> Path:
    Repository.init(path, passphrase=secret, kdf=KdfParams(t=1, m=64, p=1)).close()
    return path


@pytest.fixture
def encrypted_store(tmp_path: Path) -> Path:
    return make_store(tmp_path / "enc", PASSWORD.encode())


def private_file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    path.chmod(0o600)
    return path


def counting_command(tmp_path: Path, secret: str) -> tuple[str, Path]:
    """A VFS_PASSWORD_COMMAND printing `secret` and adding a line to the returned file at each run."""
    runs = tmp_path / "runs"
    code = f"open({str(runs)!r}, 'a').write('run\\n'); print({secret!r})"
    return shlex.join([sys.executable, "-c", code]), runs


def test_an_encrypted_store_opens_with_its_password_only(encrypted_store: Path) -> None:
    with vfs.open(encrypted_store, writable=True, password=PASSWORD) as vol:
        vol.write_bytes("notes.txt", b"first")
        vol.write_bytes("notes.txt", b"second")
        vol.snapshot("s")
        assert vol.read_bytes("notes.txt@1") == b"first" and vol.read_bytes("notes.txt") == b"second"
    packs = b"".join(p.read_bytes() for p in (encrypted_store / "packs").rglob("*.pack"))
    assert b"first" not in packs and b"second" not in packs
    with vfs.open(encrypted_store, password=PASSWORD.encode()) as vol:  # bytes too (a key file's content)
        assert vol.read_text("notes.txt@s") == "second"
    wrong = r"wrong passphrase: it opens none of the volume's 1 keys \(the passphrase given by password=\)$"
    with pytest.raises(WrongPassphrase, match=wrong):
        vfs.open(encrypted_store, password="wrong")


def test_without_any_source_the_error_names_the_ways_to_give_one(encrypted_store: Path) -> None:
    with pytest.raises(KeyRequired) as info:
        vfs.open(encrypted_store)
    message = str(info.value)
    assert message.startswith(f"{encrypted_store} is an encrypted volume and no passphrase")
    for way in ("password=", "key_file=", "VFS_PASSWORD_FILE", "VFS_PASSWORD_COMMAND", "VFS_PASSWORD,",
                "vfs-password", "terminal"):
        assert way in message
    assert "--password-file" not in message and "\n" not in message
    with pytest.raises(KeyRequired):
        vfs.load("blake3://" + "0" * 64 + "/x", location=encrypted_store)


@pytest.mark.parametrize("source", ["VFS_PASSWORD_FILE", "VFS_PASSWORD_COMMAND", "VFS_PASSWORD",
                                    "CREDENTIALS_DIRECTORY"])
def test_each_environment_source_opens_it(encrypted_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          source: str) -> None:
    if source == "VFS_PASSWORD_FILE":
        monkeypatch.setenv(source, str(private_file(tmp_path / "pw", PASSWORD.encode() + b"\n")))
    elif source == "VFS_PASSWORD_COMMAND":
        monkeypatch.setenv(source, counting_command(tmp_path, PASSWORD)[0])
    elif source == "VFS_PASSWORD":
        monkeypatch.setenv(source, PASSWORD)
    else:
        creds = tmp_path / "creds"
        creds.mkdir()
        private_file(creds / "vfs-password", PASSWORD.encode())
        monkeypatch.setenv(source, str(creds))
    with vfs.open(encrypted_store, writable=True) as vol:
        vol.write_text("f.txt", source)
        assert vol.read_text("f.txt") == source


def test_password_and_key_file_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = passwords.write_key_file(tmp_path / "machine.key")
    store = make_store(tmp_path / "enc", key.secret)
    monkeypatch.setenv("VFS_PASSWORD", "what the environment says")  # the arguments come first
    with vfs.open(store, writable=True, key_file=tmp_path / "machine.key") as vol:
        vol.write_text("f.txt", "by key file")
    with vfs.open(store, password_file=str(private_file(tmp_path / "pw", key.secret + b"\n"))) as vol:
        assert vol.read_text("f.txt") == "by key file"
    with pytest.raises(WrongPassphrase, match=r"given by VFS_PASSWORD\)$"):
        vfs.open(store)  # VFS_PASSWORD is read when no argument is given
    with pytest.raises(UsageError, match="password_file= or key_file=, not both"):
        vfs.open(store, password_file=tmp_path / "pw", key_file=tmp_path / "machine.key")
    with pytest.raises(UsageError, match="one of password, password_file and key_file"):
        vfs.open(store, password="x", key_file=tmp_path / "machine.key")
    with pytest.raises(UsageError, match="password_file=: cannot read"):
        vfs.open(store, password_file=tmp_path / "absent")


def test_the_sources_are_read_once_per_volume(encrypted_store: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    command, runs = counting_command(tmp_path, PASSWORD)
    monkeypatch.setenv("VFS_PASSWORD_COMMAND", command)
    with vfs.open(encrypted_store, writable=True) as vol:
        for i in range(3):  # each write takes the store's lock: the store is reopened, with the kept keys
            vol.write_text(f"f{i}.txt", str(i))
        vol.snapshot("s")
        assert vol.read_text("f2.txt") == "2"
    assert runs.read_text() == "run\n"


def test_a_plain_store_asks_no_source(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command, runs = counting_command(tmp_path, PASSWORD)
    monkeypatch.setenv("VFS_PASSWORD_COMMAND", command)
    with vfs.open(store, writable=True) as vol:
        vol.write_text("f.txt", "plain")
    assert not runs.exists()


def test_a_prompt_only_on_a_terminal(encrypted_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def typed(prompt: str = "") -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr(passwords.getpass, "getpass", typed)
    with pytest.raises(KeyRequired):
        vfs.open(encrypted_store)
    assert prompts == []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    with vfs.open(encrypted_store, writable=True) as vol:
        vol.write_text("f.txt", "typed")
        vol.write_text("g.txt", "once")
    assert prompts == ["Passphrase: "]


def test_fsspec_takes_the_same_options(encrypted_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec

    with vfs.open(encrypted_store, writable=True, password=PASSWORD) as vol:
        vol.write_text("f.txt", "through fsspec")
    pw = str(private_file(tmp_path / "pw", PASSWORD.encode()))
    with fsspec.open("vfs://f.txt", "rt", location=str(encrypted_store), password_file=pw) as f:
        assert f.read() == "through fsspec"
    monkeypatch.setenv("VFS_PASSWORD", PASSWORD)
    assert fsspec.filesystem("vfs", location=str(encrypted_store), skip_instance_cache=True).cat("f.txt") \
        == b"through fsspec"
