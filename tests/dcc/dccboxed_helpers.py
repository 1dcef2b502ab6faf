"""DCC Boxed users for the tests: their XML-signing and GBCS signing keys, and requests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.clock import FixedClock
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.dcc.dccboxed import SUPPLIER, DccBoxedProfile, build_dccboxed
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import build_request
from smarthydra.duis.xmldsig import XmlSigner
from smarthydra.eui import Eui64
from smarthydra.pki.certificates import OrganisationCertificate, parse_certificate
from tests.conftest import conformance_path

ESME = Eui64.parse("00DB1234567890A0")
GSME = Eui64.parse("00DB1234567890A3")
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    data = path.read_bytes()
    key = (
        serialization.load_pem_private_key(data, None)
        if data.startswith(b"-----")
        else serialization.load_der_private_key(data, None)
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def xml_signer(eui_hex: str) -> XmlSigner:
    smki = conformance_path("smki")
    keystore = SoftKeystore(None, passphrase=b"test")
    keystore.import_private_key(
        "xml", private_key(smki / f"xml-sign-{eui_hex}-ds.key"), KeyUsage.DIGITAL_SIGNATURE
    )
    certificate = parse_certificate((smki / f"xml-sign-{eui_hex}-ds.pem").read_bytes())
    assert isinstance(certificate, OrganisationCertificate)
    return XmlSigner(keystore, "xml", certificate)


def gbcs_keystore(eui_hex: str) -> SoftKeystore:
    """The user's GBCS digital-signing key (for critical pre-commands), label ``ds``."""
    keystore = SoftKeystore(None, passphrase=b"test")
    path = conformance_path("gbcs", "rtds-keystore", f"{eui_hex.lower()}-ds.key")
    keystore.import_private_key("ds", private_key(path), KeyUsage.DIGITAL_SIGNATURE)
    return keystore


@dataclass
class Boxed:
    profile: DccBoxedProfile
    clock: FixedClock
    supplier: XmlSigner
    counter: int = 1_000

    def rid(self, target: Eui64 = ESME, counter: int | None = None) -> RequestId:
        if counter is None:
            self.counter += 1
            counter = self.counter
        return RequestId(SUPPLIER, target, counter)

    def request(
        self,
        srv: str = "4.1.1",
        cv: CommandVariant = CommandVariant.NON_CRITICAL_TO_DEVICE,
        rid: RequestId | None = None,
        parameters: dict[str, object] | None = None,
        signer: XmlSigner | None = None,
    ) -> bytes:
        root = build_request(rid or self.rid(), cv, srv, parameters or {})
        return (signer or self.supplier).sign_bytes(root)


def boxed(database_url: str = "sqlite://", revoked: tuple[int, ...] = ()) -> Boxed:
    clock = FixedClock(NOW)
    profile = build_dccboxed(
        conformance_path(), database_url, clock=clock, revoked=revoked
    )
    return Boxed(profile, clock, xml_signer("90B3D51F30010000"))
