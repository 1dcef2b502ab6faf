"""The DCC's own digital-signing keys: the commands the DCC sends and signs in its own name.

Some use cases are signed by the DCC rather than by the user who asked for them: the
handover of a DCC-controlled device's credentials (6.21, CS02b supplier or network operator
by handover), the change of supplier by the transitional CoS party (6.23, CS02b), and the
non-critical joins the DCC sends on a user's behalf. The transform marks each such command
``dcc_signed``; the DCC signs it with the key certified (by an SMKI organisation certificate)
for the role that use case is signed in, and sends it from that certificate's EUI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from smarthydra.crypto.keystore import Keystore
from smarthydra.eui import Eui64


class DccSigningError(ValueError):
    """A DCC signing key whose certificate does not certify it."""


def _spki(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        raise DccSigningError("not a public key")
    raw = public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert isinstance(raw, bytes)
    return raw


@dataclass(frozen=True)
class DccSigningKey:
    """One DCC signing identity: the EUI commands are sent from, the keystore key that signs
    them, and the SMKI organisation certificate (DER) of that key in the role it signs as."""

    eui: Eui64
    keystore: Keystore = field(repr=False)
    label: str
    certificate: bytes = field(repr=False)

    def __post_init__(self) -> None:
        try:
            certified = x509.load_der_x509_certificate(self.certificate).public_key()
        except ValueError as exc:
            raise DccSigningError(f"the DCC signing certificate does not parse: {exc}") from None
        if _spki(certified) != _spki(self.keystore.public_key(self.label)):
            raise DccSigningError(
                f"the certificate does not certify keystore key {self.label!r}"
            )

    def sign(self, data: bytes) -> bytes:
        """ECDSA-SHA256, 64-byte r || s, as GBCS carries it."""
        return self.keystore.sign(self.label, data)


@dataclass(frozen=True)
class DccSigning:
    """Which key signs which use case: ``by_use_case`` first (e.g. CS02bSupplierByTransCoS by
    the transitional CoS party), else ``default``."""

    default: DccSigningKey | None = None
    by_use_case: dict[str, DccSigningKey] = field(default_factory=dict)

    def for_use_case(self, use_case: str) -> DccSigningKey | None:
        return self.by_use_case.get(use_case, self.default)
