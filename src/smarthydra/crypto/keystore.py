"""The ``Keystore`` interface: where parties and devices keep their P-256 private keys.

A keystore holds named P-256 key pairs. Callers never get private key material back: they
ask the keystore to sign or to compute an ECDH shared secret. Two implementations pass the
same test suite: :class:`smarthydra.crypto.softstore.SoftKeystore` (keys encrypted at rest)
and :class:`smarthydra.crypto.pkcs11store.Pkcs11Keystore` (a PKCS#11 token such as SoftHSM2).
"""

from __future__ import annotations

import abc
import enum

from cryptography.hazmat.primitives.asymmetric import ec


class KeystoreError(Exception):
    """Base class for keystore failures."""


class KeyNotFound(KeystoreError):
    def __init__(self, label: str) -> None:
        super().__init__(f"no key labelled {label!r} in this keystore")
        self.label = label


class KeyExists(KeystoreError):
    def __init__(self, label: str) -> None:
        super().__init__(f"a key labelled {label!r} already exists in this keystore")
        self.label = label


class KeyUsageError(KeystoreError):
    """The key exists but is not allowed to do what was asked (e.g. sign with a KA key)."""


class KeystoreAuthenticationError(KeystoreError):
    """The keystore could not be opened: wrong passphrase (soft store) or wrong PIN (token)."""


class KeyUsage(enum.Enum):
    """What a key may be used for; SMKI separates signing keys from key-agreement keys."""

    DIGITAL_SIGNATURE = "ds"
    KEY_AGREEMENT = "ka"


class Keystore(abc.ABC):
    """Named P-256 key pairs whose private halves never leave the store."""

    @abc.abstractmethod
    def generate(self, label: str, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        """Create a new key pair under ``label`` and return its public key."""

    @abc.abstractmethod
    def import_private_key(
        self, label: str, key: ec.EllipticCurvePrivateKey, usage: KeyUsage
    ) -> ec.EllipticCurvePublicKey:
        """Take custody of an existing private key (e.g. published test keys)."""

    @abc.abstractmethod
    def public_key(self, label: str) -> ec.EllipticCurvePublicKey:
        """Export the public half of ``label``."""

    @abc.abstractmethod
    def usage(self, label: str) -> KeyUsage:
        """What ``label`` may be used for."""

    @abc.abstractmethod
    def sign(self, label: str, data: bytes) -> bytes:
        """ECDSA-SHA256 over ``data`` with a signing key; returns the 64-byte ``r || s``."""

    @abc.abstractmethod
    def derive_shared_secret(self, label: str, peer: ec.EllipticCurvePublicKey) -> bytes:
        """Static-static ECDH with a key-agreement key; returns the 32-byte secret Z."""

    @abc.abstractmethod
    def destroy(self, label: str) -> None:
        """Delete the key pair irrecoverably."""

    @abc.abstractmethod
    def labels(self) -> list[str]:
        """Every label held, sorted."""

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and label in self.labels()

    def close(self) -> None:  # noqa: B027 - optional hook, most stores need nothing
        """Release any session or file handle."""
