"""Issue SMKI certificates whose CA key lives in a :class:`Keystore` (soft or PKCS#11).

The TBSCertificate is built with ``asn1crypto`` and its DER is signed through the keystore
(ECDSA-SHA256), so a CA key on an HSM never has to leave it. This is plain X.509; the field
encodings (PrintableString CA names, UTF8String subject OU, BIT STRING x500UniqueIdentifier,
UTCTime until 2049 and GeneralizedTime after, 16-byte serials, 8-byte RFC 7093 key
identifiers, extension order and criticality) copy the published SMKI test certificates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from asn1crypto import core, keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import Keystore, KeyUsage
from smarthydra.pki import profile
from smarthydra.pki.certificates import (
    AnyCertificate,
    CaCertificate,
    CertificateError,
    DeviceCertificate,
    HardwareModuleName,
    OrganisationCertificate,
    parse_certificate,
)

DEVICE_NOT_AFTER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
_ECDSA_SHA256 = {"algorithm": "sha256_ecdsa"}

Rng = Callable[[int], bytes]


class IssuanceError(Exception):
    """A certificate could not be issued as asked."""


def key_identifier(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 7093 section 2 method (as RFC 5280 method 2): ``0100`` then 60 bits of SHA-1."""
    point = public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    digest = bytearray(hashlib.sha1(point).digest()[-profile.KEY_IDENTIFIER_SIZE :])
    digest[0] = 0x40 | (digest[0] & 0x0F)
    return bytes(digest)


def random_serial(rng: Rng = os.urandom) -> int:
    """A positive serial that always encodes in exactly 16 bytes, like the SMKI test certs."""
    raw = bytearray(rng(profile.SERIAL_SIZE))
    raw[0] = 0x40 | (raw[0] & 0x3F)
    return int.from_bytes(raw, "big")


def _printable(oid: str, value: str) -> Any:
    return asn1_x509.RelativeDistinguishedName(
        [
            asn1_x509.NameTypeAndValue(
                {
                    "type": oid,
                    "value": asn1_x509.DirectoryString(name="printable_string", value=value),
                }
            )
        ]
    )


def _utf8(oid: str, value: str) -> Any:
    return asn1_x509.RelativeDistinguishedName(
        [
            asn1_x509.NameTypeAndValue(
                {"type": oid, "value": asn1_x509.DirectoryString(name="utf8_string", value=value)}
            )
        ]
    )


def ca_name(common_name: str, role_ou: str | None = "07") -> bytes:
    """A CA's distinguished name: ``OU=07, CN=<name>`` (or just the CN, as device CAs use)."""
    rdns = []
    if role_ou is not None:
        rdns.append(_printable("2.5.4.11", role_ou))
    rdns.append(_printable("2.5.4.3", common_name))
    return bytes(asn1_x509.Name(name="", value=asn1_x509.RDNSequence(rdns)).dump())


def organisation_name(role: int, eui64: bytes, common_name: str | None = None) -> bytes:
    """``[CN=<name>,] OU=<role>, x500UniqueIdentifier=<EUI-64>`` as the SMKI profile has it."""
    _check_eui64(eui64)
    rdns = []
    if common_name is not None:
        rdns.append(_utf8("2.5.4.3", common_name))
    rdns.append(_utf8("2.5.4.11", profile.role_code(role)))
    unique = asn1_x509.NameTypeAndValue({"type": "2.5.4.45", "value": core.OctetBitString(eui64)})
    rdns.append(asn1_x509.RelativeDistinguishedName([unique]))
    return bytes(asn1_x509.Name(name="", value=asn1_x509.RDNSequence(rdns)).dump())


def _check_eui64(eui64: bytes) -> None:
    if len(eui64) != profile.EUI64_SIZE:
        raise IssuanceError(f"an EUI-64 is {profile.EUI64_SIZE} bytes, got {len(eui64)}")


def _time(when: dt.datetime) -> Any:
    if when.tzinfo is None:
        raise IssuanceError("certificate times must be timezone-aware (UTC)")
    when = when.astimezone(dt.UTC).replace(microsecond=0)
    kind = "utc_time" if when.year < 2050 else "general_time"  # RFC 5280 4.1.2.5
    return asn1_x509.Time(name=kind, value=when)


def _extension(oid: str, critical: bool, value: Any) -> Any:
    return asn1_x509.Extension({"extn_id": oid, "critical": critical, "extn_value": value})


def _key_usage(usage: KeyUsage) -> Any:
    bit = "digital_signature" if usage is KeyUsage.DIGITAL_SIGNATURE else "key_agreement"
    return _extension("2.5.29.15", True, asn1_x509.KeyUsage({bit}))


def _policies(oid: str) -> Any:
    return _extension(
        "2.5.29.32", True, asn1_x509.CertificatePolicies([{"policy_identifier": oid}])
    )


def _ski(public_key: ec.EllipticCurvePublicKey) -> Any:
    return _extension("2.5.29.14", False, core.OctetString(key_identifier(public_key)))


def _aki(identifier: bytes) -> Any:
    return _extension(
        "2.5.29.35", False, asn1_x509.AuthorityKeyIdentifier({"key_identifier": identifier})
    )


_T = TypeVar("_T")


def _expect(issued: AnyCertificate, kind: type[_T]) -> _T:
    if not isinstance(issued, kind):  # would be a bug in this module, not bad input
        raise IssuanceError(f"issued a {type(issued).__name__}, meant a {kind.__name__}")
    return issued


@dataclass(frozen=True)
class CertificateSigner:
    """A CA as a signer: its key (by label, in a keystore) and the name and key id it issues as."""

    keystore: Keystore
    key_label: str
    name_der: bytes
    key_identifier: bytes

    @classmethod
    def for_ca(
        cls, keystore: Keystore, key_label: str, certificate: CaCertificate
    ) -> CertificateSigner:
        if (
            keystore.public_key(key_label).public_numbers()
            != certificate.public_key.public_numbers()
        ):
            raise IssuanceError(f"key {key_label!r} does not match the CA certificate's public key")
        return cls(keystore, key_label, certificate.subject_der, certificate.subject_key_id)

    @classmethod
    def self_signing(cls, keystore: Keystore, key_label: str, name_der: bytes) -> CertificateSigner:
        return cls(keystore, key_label, name_der, key_identifier(keystore.public_key(key_label)))

    def _sign(
        self,
        *,
        serial: int,
        subject_der: bytes,
        subject_public_key: ec.EllipticCurvePublicKey,
        not_before: dt.datetime,
        not_after: dt.datetime,
        extensions: list[Any],
    ) -> AnyCertificate:
        if not 0 < serial < 2**159:
            raise IssuanceError("a serial number is a positive integer of at most 20 octets")
        if not_before.tzinfo is None or not_after.tzinfo is None:
            raise IssuanceError("certificate times must be timezone-aware (UTC)")
        if not_after <= not_before:
            raise IssuanceError("notAfter must be later than notBefore")
        if subject_public_key.curve.name != "secp256r1":
            raise IssuanceError("SMKI subject keys are P-256")
        spki = keys.PublicKeyInfo.load(
            subject_public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        tbs = asn1_x509.TbsCertificate(
            {
                "version": "v3",
                "serial_number": serial,
                "signature": _ECDSA_SHA256,
                "issuer": asn1_x509.Name.load(self.name_der),
                "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
                "subject": asn1_x509.Name.load(subject_der),
                "subject_public_key_info": spki,
                "extensions": extensions,
            }
        )
        raw_signature = self.keystore.sign(self.key_label, tbs.dump())
        certificate = asn1_x509.Certificate(
            {
                "tbs_certificate": tbs,
                "signature_algorithm": _ECDSA_SHA256,
                "signature_value": primitives.raw_to_der_signature(raw_signature),
            }
        )
        try:
            parsed = parse_certificate(certificate.dump())
        except CertificateError as exc:  # would be a bug here, not bad input
            raise IssuanceError(f"issued certificate does not parse back: {exc}") from None
        if not parsed.verify_signature(self.keystore.public_key(self.key_label)):
            raise IssuanceError("the keystore's signature does not verify")
        return parsed

    def issue_organisation(
        self,
        *,
        subject_public_key: ec.EllipticCurvePublicKey,
        role: int,
        eui64: bytes,
        usage: KeyUsage,
        not_before: dt.datetime,
        not_after: dt.datetime,
        serial: int | None = None,
        common_name: str | None = None,
        policy_oid: str = profile.ORGANISATION_POLICY_OID,
    ) -> OrganisationCertificate:
        """An organisation DS or KA certificate (extensions KU, SKI, policies, AKI)."""
        issued = self._sign(
            serial=random_serial() if serial is None else serial,
            subject_der=organisation_name(role, eui64, common_name),
            subject_public_key=subject_public_key,
            not_before=not_before,
            not_after=not_after,
            extensions=[
                _key_usage(usage),
                _ski(subject_public_key),
                _policies(policy_oid),
                _aki(self.key_identifier),
            ],
        )
        return _expect(issued, OrganisationCertificate)

    def issue_device(
        self,
        *,
        subject_public_key: ec.EllipticCurvePublicKey,
        eui64: bytes,
        usage: KeyUsage,
        not_before: dt.datetime,
        serial: int | None = None,
        hw_type: str = profile.DEVICE_HW_TYPE_OID,
        policy_oid: str = profile.DEVICE_POLICY_OID,
    ) -> DeviceCertificate:
        """A device DS or KA certificate (KU, SKI, SAN hardwareModuleName, policies, AKI)."""
        _check_eui64(eui64)
        # AnotherName.value is [0] EXPLICIT; asn1crypto needs the tag on the inner value.
        module = HardwareModuleName({"hw_type": hw_type, "hw_serial_num": eui64}, explicit=0)
        san = asn1_x509.GeneralNames(
            [
                asn1_x509.GeneralName(
                    name="other_name",
                    value={"type_id": profile.HARDWARE_MODULE_NAME_OID, "value": module},
                )
            ]
        )
        issued = self._sign(
            serial=random_serial() if serial is None else serial,
            subject_der=bytes(asn1_x509.Name(name="", value=asn1_x509.RDNSequence([])).dump()),
            subject_public_key=subject_public_key,
            not_before=not_before,
            not_after=DEVICE_NOT_AFTER,
            extensions=[
                _key_usage(usage),
                _ski(subject_public_key),
                _extension("2.5.29.17", True, san),
                _policies(policy_oid),
                _aki(self.key_identifier),
            ],
        )
        return _expect(issued, DeviceCertificate)

    def issue_ca(
        self,
        *,
        subject_name_der: bytes,
        subject_public_key: ec.EllipticCurvePublicKey,
        not_before: dt.datetime,
        not_after: dt.datetime,
        path_length: int | None = 0,
        serial: int | None = None,
        policy_oid: str = profile.ORGANISATION_POLICY_OID,
    ) -> CaCertificate:
        """A CA certificate; self-signed (a root, no AKI) when the subject is this signer."""
        self_signed = subject_name_der == self.name_der and (
            key_identifier(subject_public_key) == self.key_identifier
        )
        constraints: dict[str, Any] = {"ca": True}
        if path_length is not None:
            constraints["path_len_constraint"] = path_length
        extensions = [
            _extension("2.5.29.19", True, asn1_x509.BasicConstraints(constraints)),
            _extension("2.5.29.15", True, asn1_x509.KeyUsage({"key_cert_sign", "crl_sign"})),
            _ski(subject_public_key),
            _policies(policy_oid),
        ]
        if not self_signed:
            extensions.append(_aki(self.key_identifier))
        issued = self._sign(
            serial=random_serial() if serial is None else serial,
            subject_der=subject_name_der,
            subject_public_key=subject_public_key,
            not_before=not_before,
            not_after=not_after,
            extensions=extensions,
        )
        return _expect(issued, CaCertificate)
