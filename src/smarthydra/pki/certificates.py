"""Parse SMKI certificates into typed objects: organisation, device and CA certificates.

Parsing uses ``asn1crypto`` rather than ``cryptography``'s X.509 loader because some published
test certificates (DCC Boxed "MDR") encode ecdsa-with-SHA256 with NULL parameters, which
``cryptography`` refuses; every such leniency is confined to this module. The signature is
checked over the TBSCertificate bytes exactly as received.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import core, pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.pki import profile


class CertificateError(Exception):
    """A certificate is malformed or does not follow the SMKI profile."""


class HardwareModuleName(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """RFC 4108: ``SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING }``."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("hw_type", core.ObjectIdentifier),
        ("hw_serial_num", core.OctetString),
    ]


@dataclass(frozen=True)
class SmkiCertificate:
    """Fields every SMKI certificate has."""

    der: bytes = field(repr=False)
    serial: int
    issuer: str
    issuer_der: bytes = field(repr=False)
    not_before: dt.datetime
    not_after: dt.datetime
    public_key: ec.EllipticCurvePublicKey
    subject_key_id: bytes
    authority_key_id: bytes | None
    policies: tuple[str, ...]
    tbs: bytes = field(repr=False)
    signature: bytes = field(repr=False)  # DER ECDSA-Sig-Value as carried

    def verify_signature(self, issuer_key: ec.EllipticCurvePublicKey) -> bool:
        """Whether ``issuer_key`` signed this certificate (never raises on a bad signature)."""
        try:
            raw = primitives.der_to_raw_signature(self.signature)
        except ValueError:
            return False
        return primitives.ecdsa_verify(issuer_key, self.tbs, raw)

    def public_key_xy(self) -> bytes:
        return primitives.public_key_to_xy(self.public_key)

    def to_pem(self) -> str:
        return str(pem.armor("CERTIFICATE", self.der).decode("ascii"))


@dataclass(frozen=True)
class OrganisationCertificate(SmkiCertificate):
    """An organisation's DS or KA certificate: role (OU) and EUI-64 (x500UniqueIdentifier)."""

    role: int
    eui64: bytes
    usage: KeyUsage
    common_name: str | None

    @property
    def role_name(self) -> str:
        return profile.role_name(self.role)


@dataclass(frozen=True)
class DeviceCertificate(SmkiCertificate):
    """A device's DS or KA certificate: empty subject, EUI-64 in hardwareModuleName."""

    eui64: bytes
    hw_type: str
    usage: KeyUsage


@dataclass(frozen=True)
class CaCertificate(SmkiCertificate):
    """A root or issuing CA certificate (basicConstraints cA = TRUE)."""

    subject: str
    subject_der: bytes
    path_length: int | None

    @property
    def self_signed(self) -> bool:
        return self.subject_der == self.issuer_der


AnyCertificate = OrganisationCertificate | DeviceCertificate | CaCertificate


def _describe_name(name: Any) -> str:
    parts = []
    for rdn in name.chosen:
        for attribute in rdn:
            oid = attribute["type"].dotted
            value = attribute["value"]
            short = {"2.5.4.3": "CN", "2.5.4.11": "OU", "2.5.4.45": "x500UniqueIdentifier"}.get(
                oid, oid
            )
            if oid == profile.UNIQUE_IDENTIFIER_OID:
                parts.append(f"{short}=#{_bit_string_bytes(value).hex().upper()}")
            else:
                parts.append(f"{short}={value.native}")
    return ", ".join(parts)


def _bit_string_bytes(value: Any) -> bytes:
    contents: bytes = value.contents
    if not contents or contents[0] != 0:
        raise CertificateError("x500UniqueIdentifier must be a whole-byte BIT STRING")
    return contents[1:]


def _name_attributes(name: Any) -> list[tuple[str, Any]]:
    return [
        (attribute["type"].dotted, attribute["value"]) for rdn in name.chosen for attribute in rdn
    ]


def unarmor(data: bytes) -> bytes:
    """DER bytes from DER or a single PEM certificate."""
    if pem.detect(data):
        try:
            kind, _, der = pem.unarmor(data)
        except ValueError as exc:
            raise CertificateError(f"bad PEM: {exc}") from None
        if kind != "CERTIFICATE":
            raise CertificateError(f"PEM holds a {kind}, not a CERTIFICATE")
        return bytes(der)
    return data


def parse_certificate(data: bytes) -> AnyCertificate:
    """Parse a DER or PEM SMKI certificate into its typed form.

    Raises :class:`CertificateError` naming what is wrong for anything that is not a
    well-formed P-256/ECDSA-SHA256 certificate following the organisation, device or CA profile.
    """
    der = unarmor(data)
    try:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        return _parse(certificate, der)
    except CertificateError:
        raise
    except (ValueError, TypeError, LookupError, AttributeError, OverflowError) as exc:
        raise CertificateError(f"malformed certificate: {exc}") from None


def load_pem_bundle(data: bytes) -> list[AnyCertificate]:
    """Every CERTIFICATE block in a PEM bundle (other block types are ignored)."""
    found: list[AnyCertificate] = []
    try:
        blocks = list(pem.unarmor(data, multiple=True))
    except ValueError as exc:
        raise CertificateError(f"bad PEM: {exc}") from None
    for kind, _, der in blocks:
        if kind == "CERTIFICATE":
            found.append(parse_certificate(bytes(der)))
    return found


def _extensions(tbs: Any) -> dict[str, tuple[bool, Any]]:
    found: dict[str, tuple[bool, Any]] = {}
    for extension in tbs["extensions"]:
        oid = extension["extn_id"].dotted
        if oid in found:
            raise CertificateError(f"extension {oid} appears twice")
        found[oid] = (bool(extension["critical"].native), extension["extn_value"].parsed)
    return found


def _single_usage(key_usage: set[str], context: str) -> KeyUsage:
    wanted = key_usage & {"digital_signature", "key_agreement"}
    if len(wanted) != 1 or key_usage - wanted:
        raise CertificateError(
            f"{context} key usage must be exactly one of digitalSignature or keyAgreement, "
            f"got {sorted(key_usage)}"
        )
    return KeyUsage.DIGITAL_SIGNATURE if wanted == {"digital_signature"} else KeyUsage.KEY_AGREEMENT


def _parse(certificate: Any, der: bytes) -> AnyCertificate:
    tbs = certificate["tbs_certificate"]
    if tbs["version"].native != "v3":
        raise CertificateError(f"SMKI certificates are X.509 v3, got {tbs['version'].native}")
    for where in (tbs["signature"], certificate["signature_algorithm"]):
        if where["algorithm"].dotted != "1.2.840.10045.4.3.2":
            raise CertificateError(
                f"signature algorithm must be ecdsa-with-SHA256, got {where['algorithm'].native}"
            )
    spki = tbs["subject_public_key_info"]
    if spki["algorithm"]["algorithm"].native != "ec":
        raise CertificateError("the subject key must be an elliptic-curve key")
    curve = spki["algorithm"]["parameters"]
    if curve.name != "named" or curve.chosen.native != "secp256r1":
        raise CertificateError("the subject key must be on P-256 (secp256r1)")
    try:
        public_key = primitives.public_key_from_xy(bytes(spki["public_key"].contents[1:]))
    except primitives.InvalidKey as exc:
        raise CertificateError(f"bad subject public key: {exc}") from None

    extensions = _extensions(tbs)
    if "2.5.29.15" not in extensions:
        raise CertificateError("the key usage extension is missing")
    ku_critical, ku_value = extensions["2.5.29.15"]
    if not ku_critical:
        raise CertificateError("the key usage extension must be critical")
    key_usage = set(ku_value.native)
    if "2.5.29.14" not in extensions:
        raise CertificateError("the subject key identifier extension is missing")
    subject_key_id = bytes(extensions["2.5.29.14"][1].native)
    authority_key_id = None
    if "2.5.29.35" in extensions:
        raw_aki = extensions["2.5.29.35"][1]["key_identifier"].native
        authority_key_id = bytes(raw_aki) if raw_aki is not None else None
    policies: tuple[str, ...] = ()
    if "2.5.29.32" in extensions:
        critical, value = extensions["2.5.29.32"]
        if not critical:
            raise CertificateError("the certificate policies extension must be critical")
        policies = tuple(p["policy_identifier"].dotted for p in value)
    else:
        raise CertificateError("the certificate policies extension is missing")

    common: dict[str, Any] = {
        "der": der,
        "serial": int(tbs["serial_number"].native),
        "issuer": _describe_name(tbs["issuer"]),
        "issuer_der": tbs["issuer"].dump(),
        "not_before": tbs["validity"]["not_before"].native,
        "not_after": tbs["validity"]["not_after"].native,
        "public_key": public_key,
        "subject_key_id": subject_key_id,
        "authority_key_id": authority_key_id,
        "policies": policies,
        "tbs": tbs.dump(),
        "signature": bytes(certificate["signature_value"].native),
    }

    basic = extensions.get("2.5.29.19")
    if basic is not None and basic[1]["ca"].native:
        if "key_cert_sign" not in key_usage:
            raise CertificateError("a CA certificate must allow keyCertSign")
        return CaCertificate(
            **common,
            subject=_describe_name(tbs["subject"]),
            subject_der=tbs["subject"].dump(),
            path_length=basic[1]["path_len_constraint"].native,
        )

    subject = _name_attributes(tbs["subject"])
    san = extensions.get("2.5.29.17")
    if not subject and san is not None:
        return _device(common, san, key_usage)
    if subject:
        return _organisation(common, subject, key_usage)
    raise CertificateError(
        "neither an organisation certificate (OU and x500UniqueIdentifier) nor a device "
        "certificate (empty subject with hardwareModuleName)"
    )


def _device(
    common: dict[str, Any], san: tuple[bool, Any], key_usage: set[str]
) -> DeviceCertificate:
    critical, names = san
    if not critical:
        raise CertificateError("a device certificate's subjectAltName must be critical")
    modules = [
        n.chosen
        for n in names
        if n.name == "other_name" and n.chosen["type_id"].dotted == profile.HARDWARE_MODULE_NAME_OID
    ]
    if len(modules) != 1 or len(names) != 1:
        raise CertificateError(
            "a device certificate's subjectAltName must be exactly one hardwareModuleName"
        )
    module = modules[0]["value"].parse(HardwareModuleName)
    eui64 = bytes(module["hw_serial_num"].native)
    if len(eui64) != profile.EUI64_SIZE:
        raise CertificateError(f"hwSerialNum must be an 8-byte EUI-64, got {len(eui64)} bytes")
    return DeviceCertificate(
        **common,
        eui64=eui64,
        hw_type=module["hw_type"].dotted,
        usage=_single_usage(key_usage, "a device certificate's"),
    )


def _organisation(
    common: dict[str, Any], subject: list[tuple[str, Any]], key_usage: set[str]
) -> OrganisationCertificate:
    by_oid: dict[str, list[Any]] = {}
    for oid, value in subject:
        by_oid.setdefault(oid, []).append(value)
    units = by_oid.get("2.5.4.11", [])
    identifiers = by_oid.get(profile.UNIQUE_IDENTIFIER_OID, [])
    if len(units) != 1 or len(identifiers) != 1:
        raise CertificateError(
            "an organisation certificate's subject needs exactly one OU (role) and one "
            "x500UniqueIdentifier (EUI-64)"
        )
    code = str(units[0].native)
    if len(code) == 2 and all(c in "0123456789ABCDEFabcdef" for c in code):
        role = int(code, 16)
    elif len(code) == 3 and (code.isascii() and code.isdigit()) and int(code) <= 0xFF:
        # DCC Boxed certificates before 1.4.1 wrote the role in decimal ("137" for 0x89).
        role = int(code)
    else:
        raise CertificateError(f"the subject OU must be a 2-hex-digit role code, got {code!r}")
    eui64 = _bit_string_bytes(identifiers[0])
    if len(eui64) != profile.EUI64_SIZE:
        raise CertificateError(
            f"x500UniqueIdentifier must hold an 8-byte EUI-64, got {len(eui64)} bytes"
        )
    names = by_oid.get("2.5.4.3", [])
    return OrganisationCertificate(
        **common,
        role=role,
        eui64=eui64,
        usage=_single_usage(key_usage, "an organisation certificate's"),
        common_name=str(names[0].native) if names else None,
    )
