"""SoftKeystore specifics: at-rest encryption, tamper detection, atomic writes, bad files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from smarthydra.crypto.keystore import KeystoreError, KeyUsage
from smarthydra.crypto.softstore import FORMAT, SoftKeystore

N = 2**10


def _counter_rng() -> object:
    state = {"n": 0}

    def rng(size: int) -> bytes:
        state["n"] += 1
        return state["n"].to_bytes(size, "big")

    return rng


def test_file_holds_no_plaintext_key(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    store = SoftKeystore(path, b"pw", scrypt_n=N)
    store.generate("ds", KeyUsage.DIGITAL_SIGNATURE)
    scalar = store._entries["ds"].key.private_numbers().private_value.to_bytes(32, "big")
    pkcs8 = store._entries["ds"].key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw = path.read_bytes()
    assert scalar.hex().encode() not in raw and pkcs8.hex().encode() not in raw
    assert scalar not in raw
    document = json.loads(raw)
    assert document["format"] == FORMAT
    assert document["kdf"]["name"] == "scrypt" and document["kdf"]["n"] == N
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_injected_rng_makes_files_deterministic_apart_from_keys(tmp_path: Path) -> None:
    a = SoftKeystore(tmp_path / "a.json", b"pw", _counter_rng(), scrypt_n=N)  # type: ignore[arg-type]
    b = SoftKeystore(tmp_path / "b.json", b"pw", _counter_rng(), scrypt_n=N)  # type: ignore[arg-type]
    assert a.path is not None and b.path is not None
    assert a.path.read_bytes() == b.path.read_bytes()


def test_entry_moved_to_other_label_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    store = SoftKeystore(path, b"pw", scrypt_n=N)
    store.generate("supplier", KeyUsage.DIGITAL_SIGNATURE)
    store.generate("other", KeyUsage.DIGITAL_SIGNATURE)
    document = json.loads(path.read_text())
    document["keys"]["other"] = document["keys"]["supplier"]
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="'other' fails its integrity check"):
        SoftKeystore(path, b"pw")


def test_usage_flip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    SoftKeystore(path, b"pw", scrypt_n=N).generate("k", KeyUsage.KEY_AGREEMENT)
    document = json.loads(path.read_text())
    document["keys"]["k"]["usage"] = "ds"
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="integrity"):
        SoftKeystore(path, b"pw")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not json", "cannot read keystore file"),
        (b'{"format": "something-else"}', "is not a smarthydra-softstore/1"),
        (b'{"format": "smarthydra-softstore/1"}', "cannot read keystore file"),
        (
            b'{"format": "smarthydra-softstore/1", "kdf": {"name": "pbkdf2"}}',
            "unsupported key-derivation",
        ),
        (b"[1, 2]", "cannot read keystore file"),
    ],
)
def test_malformed_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(content)
    with pytest.raises(KeystoreError, match=message):
        SoftKeystore(path, b"pw")


def test_malformed_entry(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    SoftKeystore(path, b"pw", scrypt_n=N).generate("k", KeyUsage.KEY_AGREEMENT)
    document = json.loads(path.read_text())
    document["keys"]["k"]["usage"] = "sideways"
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="'k' is malformed"):
        SoftKeystore(path, b"pw")


def test_failed_write_leaves_old_file_and_memory_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.json"
    store = SoftKeystore(path, b"pw", scrypt_n=N)
    store.generate("a", KeyUsage.DIGITAL_SIGNATURE)
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.generate("b", KeyUsage.DIGITAL_SIGNATURE)
    with pytest.raises(OSError, match="disk full"):
        store.destroy("a")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert store.labels() == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temporary left behind


def test_new_file_fixes_passphrase_even_when_empty(tmp_path: Path) -> None:
    from smarthydra.crypto.keystore import KeystoreAuthenticationError

    path = tmp_path / "sub" / "k.json"
    SoftKeystore(path, b"first", scrypt_n=N)
    assert path.exists()
    with pytest.raises(KeystoreAuthenticationError):
        SoftKeystore(path, b"second")
