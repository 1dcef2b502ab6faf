"""A software keystore: P-256 keys held in memory, encrypted at rest in one JSON file.

At rest each private key is its PKCS#8 DER encrypted with AES-256-GCM under a key derived from
the passphrase with scrypt (RFC 7914, as implemented by ``cryptography``). The key's label and
usage are the GCM additional data, so an entry cannot be moved to another label or usage
without the tag failing. A "check" entry (GCM over nothing) lets a wrong passphrase be told
apart from a corrupted key even when the store is empty. The file is rewritten atomically
(write to a temporary file in the same directory, fsync, rename) after every change.

With ``path=None`` the store lives only in memory, for tests and simulations.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import (
    KeyExists,
    KeyNotFound,
    Keystore,
    KeystoreAuthenticationError,
    KeystoreError,
    KeyUsage,
    KeyUsageError,
)

FORMAT = "smarthydra-softstore/1"
DEFAULT_SCRYPT_N = 2**15  # ~32 MiB, tens of milliseconds: paid once per open
SCRYPT_R = 8
SCRYPT_P = 1
_CHECK_AAD = FORMAT.encode() + b" passphrase check"
_NONCE_SIZE = 12

Rng = Callable[[int], bytes]


@dataclass(frozen=True)
class _Entry:
    usage: KeyUsage
    key: ec.EllipticCurvePrivateKey


def _entry_aad(label: str, usage: KeyUsage) -> bytes:
    return json.dumps([FORMAT, label, usage.value]).encode()


class SoftKeystore(Keystore):
    """P-256 keys in process memory, optionally persisted encrypted to ``path``.

    Opening an existing file with the wrong passphrase raises
    :class:`KeystoreAuthenticationError`; a missing file is created (empty) at once so that
    the passphrase is fixed from the first open.
    """

    def __init__(
        self,
        path: Path | None,
        passphrase: bytes,
        rng: Rng = os.urandom,
        *,
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> None:
        self._path = path
        self._rng = rng
        self._entries: dict[str, _Entry] = {}
        self._wrapping_key = b""
        self._salt = b""
        self._scrypt_n = scrypt_n
        if path is None:
            return
        if path.exists():
            self._load(path, passphrase)
        else:
            self._salt = rng(16)
            self._wrapping_key = self._derive(passphrase, self._salt, scrypt_n)
            self._save()

    # --- persistence --------------------------------------------------------------------

    @staticmethod
    def _derive(passphrase: bytes, salt: bytes, n: int) -> bytes:
        try:
            return Scrypt(salt=salt, length=32, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)
        except ValueError as exc:
            raise KeystoreError(f"bad scrypt parameters: {exc}") from None

    def _load(self, path: Path, passphrase: bytes) -> None:
        try:
            document = json.loads(path.read_text())
            if document.get("format") != FORMAT:
                raise KeystoreError(f"{path} is not a {FORMAT} keystore file")
            kdf = document["kdf"]
            if kdf.get("name") != "scrypt" or kdf.get("r") != SCRYPT_R or kdf.get("p") != SCRYPT_P:
                raise KeystoreError(f"{path}: unsupported key-derivation parameters {kdf!r}")
            self._salt = bytes.fromhex(kdf["salt"])
            self._scrypt_n = int(kdf["n"])
            check = document["check"]
            check_nonce = bytes.fromhex(check["nonce"])
            check_tag = bytes.fromhex(check["tag"])
            raw_keys: dict[str, Any] = document["keys"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeystoreError(f"cannot read keystore file {path}: {exc}") from None
        self._wrapping_key = self._derive(passphrase, self._salt, self._scrypt_n)
        try:
            primitives.aes_gcm_decrypt(self._wrapping_key, check_nonce, b"", _CHECK_AAD, check_tag)
        except primitives.AuthenticationFailed:
            raise KeystoreAuthenticationError(f"wrong passphrase for keystore {path}") from None
        for label, raw in raw_keys.items():
            self._entries[label] = self._unwrap(path, label, raw)

    def _unwrap(self, path: Path, label: str, raw: Any) -> _Entry:
        try:
            usage = KeyUsage(raw["usage"])
            nonce = bytes.fromhex(raw["nonce"])
            blob = bytes.fromhex(raw["ciphertext"])
            pkcs8 = primitives.aes_gcm_decrypt(
                self._wrapping_key, nonce, blob[:-16], _entry_aad(label, usage), blob[-16:]
            )
            key = serialization.load_der_private_key(pkcs8, password=None)
        except primitives.AuthenticationFailed:
            raise KeystoreError(
                f"{path}: key {label!r} fails its integrity check (file tampered or corrupt)"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise KeystoreError(f"{path}: key {label!r} is malformed: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise KeystoreError(f"{path}: key {label!r} is not a P-256 key")
        return _Entry(usage, key)

    def _wrap(self, label: str, entry: _Entry) -> dict[str, str]:
        pkcs8 = entry.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        nonce = self._rng(_NONCE_SIZE)
        ciphertext, tag = primitives.aes_gcm_encrypt(
            self._wrapping_key, nonce, pkcs8, _entry_aad(label, entry.usage)
        )
        return {
            "usage": entry.usage.value,
            "nonce": nonce.hex(),
            "ciphertext": (ciphertext + tag).hex(),
        }

    def _save(self) -> None:
        if self._path is None:
            return
        check_nonce = self._rng(_NONCE_SIZE)
        _, check_tag = primitives.aes_gcm_encrypt(self._wrapping_key, check_nonce, b"", _CHECK_AAD)
        document = {
            "format": FORMAT,
            "kdf": {
                "name": "scrypt",
                "salt": self._salt.hex(),
                "n": self._scrypt_n,
                "r": SCRYPT_R,
                "p": SCRYPT_P,
            },
            "check": {"nonce": check_nonce.hex(), "tag": check_tag.hex()},
            "keys": {label: self._wrap(label, e) for label, e in sorted(self._entries.items())},
        }
        directory = self._path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self._path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o600)
            os.replace(tmp_name, self._path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    # --- Keystore -----------------------------------------------------------------------

    def _entry(self, label: str) -> _Entry:
        try:
            return self._entries[label]
        except KeyError:
            raise KeyNotFound(label) from None

    def _add(self, label: str, key: ec.EllipticCurvePrivateKey, usage: KeyUsage) -> None:
        if not label:
            raise KeystoreError("a key label must not be empty")
        if label in self._entries:
            raise KeyExists(label)
        self._entries[label] = _Entry(usage, key)
        try:
            self._save()
        except BaseException:
            del self._entries[label]
            raise

    def generate(self, label: str, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        key = primitives.generate_private_key()
        self._add(label, key, usage)
        return key.public_key()

    def import_private_key(
        self, label: str, key: ec.EllipticCurvePrivateKey, usage: KeyUsage
    ) -> ec.EllipticCurvePublicKey:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise primitives.InvalidKey("only P-256 private keys can be imported")
        self._add(label, key, usage)
        return key.public_key()

    def public_key(self, label: str) -> ec.EllipticCurvePublicKey:
        return self._entry(label).key.public_key()

    def usage(self, label: str) -> KeyUsage:
        return self._entry(label).usage

    def sign(self, label: str, data: bytes) -> bytes:
        entry = self._entry(label)
        if entry.usage is not KeyUsage.DIGITAL_SIGNATURE:
            raise KeyUsageError(f"key {label!r} is a key-agreement key and cannot sign")
        return primitives.ecdsa_sign(entry.key, data)

    def derive_shared_secret(self, label: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        entry = self._entry(label)
        if entry.usage is not KeyUsage.KEY_AGREEMENT:
            raise KeyUsageError(f"key {label!r} is a signing key and cannot do key agreement")
        if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != "secp256r1":
            raise primitives.InvalidKey("the peer key for ECDH must be a P-256 public key")
        return primitives.ecdh(entry.key, peer)

    def destroy(self, label: str) -> None:
        entry = self._entry(label)
        del self._entries[label]
        try:
            self._save()
        except BaseException:
            self._entries[label] = entry
            raise

    def labels(self) -> list[str]:
        return sorted(self._entries)

    @property
    def path(self) -> Path | None:
        return self._path
