"""The Volume API on an encrypted store (no mount): the password opens it, none or a wrong one does not."""

from __future__ import annotations

from pathlib import Path

import pytest

import vfs
from vfs.errors import KeyRequired, WrongPassphrase
from vfs.repository import Repository
from vfs.store.keys import KdfParams

PASSWORD = "a volume's passphrase"


@pytest.fixture
def encrypted_store(tmp_path: Path) -> Path:
    Repository.init(tmp_path / "enc", passphrase=PASSWORD.encode(), kdf=KdfParams(t=1, m=64, p=1)).close()
    return tmp_path / "enc"


def test_an_encrypted_store_opens_with_its_password_only(encrypted_store: Path, tmp_path: Path) -> None:
    with vfs.open(encrypted_store, writable=True, password=PASSWORD) as vol:
        vol.write_bytes("notes.txt", b"first")
        vol.write_bytes("notes.txt", b"second")
        vol.snapshot("s")
        assert vol.read_bytes("notes.txt@1") == b"first" and vol.read_bytes("notes.txt") == b"second"
    packs = b"".join(p.read_bytes() for p in (encrypted_store / "packs").rglob("*.pack"))
    assert b"first" not in packs and b"second" not in packs
    with vfs.open(encrypted_store) as vol:  # the catalog reads without it; the content does not
        assert vol.exists("notes.txt")
        with pytest.raises(KeyRequired):
            vol.read_bytes("notes.txt")
    with pytest.raises(WrongPassphrase):
        vfs.open(encrypted_store, password="wrong")
    with vfs.open(encrypted_store, writable=True) as vol, pytest.raises(KeyRequired):
        vol.write_bytes("other.txt", b"would be stored plain")
