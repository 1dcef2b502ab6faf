"""Revocation as a relying party (the DCC) applies it: from the SMKI repository's signed CRL.

The DCC keeps the last CRL it downloaded and verified (:meth:`RevocationCheck.refresh`), and
refuses a user whose signing key is carried only by revoked organisation certificates.
Without a downloaded CRL it falls back to the repository's own revocation list, so an
in-process world behaves the same as one talking to the HTTP repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.eui import Eui64
from smarthydra.pki.certificates import CaCertificate
from smarthydra.pki.hierarchy import SmkiRepository, parse_crl


class SmkiUser(Protocol):
    """What the check needs of a DCC user (``dcc.inventory.DccUser`` has it)."""

    @property
    def eui(self) -> Eui64: ...

    @property
    def signing_key(self) -> ec.EllipticCurvePublicKey: ...


@dataclass
class RevocationCheck:
    repository: SmkiRepository
    crl_serials: set[int] | None = None
    crl_issuer: CaCertificate | None = field(default=None, repr=False)

    def refresh(self, crl_der: bytes, issuer: CaCertificate) -> int:
        """Adopt a CRL after checking its signature; the number of revoked serials."""
        self.crl_serials = parse_crl(crl_der, issuer)
        self.crl_issuer = issuer
        return len(self.crl_serials)

    def is_revoked(self, serial: int) -> bool:
        if self.crl_serials is not None:
            return serial in self.crl_serials or self.repository.is_revoked(serial)
        return self.repository.is_revoked(serial)

    def check_key(self, eui: Eui64, key: ec.EllipticCurvePublicKey) -> str | None:
        """None if some unrevoked DS certificate of ``eui`` carries ``key``; else why not."""
        wanted = primitives.public_key_to_xy(key)
        carrying = [
            c
            for c in self.repository.by_eui64(eui.value, usage=KeyUsage.DIGITAL_SIGNATURE)
            if primitives.public_key_to_xy(c.public_key) == wanted
        ]
        if not carrying:
            return None  # no SMKI certificate known for this key: other checks decide
        live = [c for c in carrying if not self.is_revoked(c.serial)]
        if live:
            return None
        serials = ", ".join(f"{c.serial:X}" for c in carrying)
        return f"the organisation certificate of {eui} ({serials}) has been revoked"

    def check_user(self, user: SmkiUser) -> str | None:
        return self.check_key(user.eui, user.signing_key)
