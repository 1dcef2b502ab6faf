"""SCP11 certificates (GP Amendment F section 6): the GP ``7F21`` format and X.509 in ``BF21``.

A security domain's certificate store (GET DATA ``BF21``) holds one or more certificates, each
either a GP SCP11 certificate (tag ``7F21``) or an X.509 DER certificate (tag ``30``); the last is
the leaf carrying PK.SD. PERFORM SECURITY OPERATION carries the OCE's certificates the same way.

GP certificate fields (Amendment F table 6-x): 93 serial, 42 CA-KLOC identifier, 5F20 subject
identifier, 95 key usage, 5F25/5F24 effective/expiration dates, 53/73 discretionary data,
BF20 restrictions, 7F49 {B0 public point, F0 key parameter reference}, 5F37 signature. The
signature is ECDSA over the concatenated data objects before ``5F37``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from smarthydra.card.gp import tlv
from smarthydra.card.gp.errors import WrongData

TAG_CERTIFICATE_STORE = 0xBF21
TAG_GP_CERTIFICATE = 0x7F21
TAG_PUBLIC_KEY = 0x7F49
TAG_SIGNATURE = 0x5F37

# Key parameter references (GP CS table B-x / Amendment F)
KEY_PARAMETER_CURVES: dict[int, ec.EllipticCurve] = {
    0x00: ec.SECP256R1(),
    0x01: ec.SECP384R1(),
    0x02: ec.SECP521R1(),
    0x03: ec.BrainpoolP256R1(),
}


def curve_parameter_reference(curve: ec.EllipticCurve) -> int:
    for ref, known in KEY_PARAMETER_CURVES.items():
        if known.name == curve.name:
            return ref
    raise WrongData(f"curve {curve.name} has no GP key parameter reference here")


def signature_hash(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    if curve.key_size > 384:
        return hashes.SHA512()
    if curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def point_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed ``04 || x || y`` encoding."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def load_point(curve: ec.EllipticCurve, point: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError as exc:
        raise WrongData(f"not a point on {curve.name}: {exc}") from None


@dataclass(frozen=True)
class Scp11Certificate:
    """One certificate from a store: its public key and, for the GP format, its fields."""

    raw: bytes
    public_key: ec.EllipticCurvePublicKey
    gp_format: bool
    serial: bytes = b""
    ca_kloc_id: bytes = b""
    subject_id: bytes = b""
    key_usage: bytes = b""
    signed_data: bytes = b""
    signature: bytes = b""

    def verify(self, issuer_key: ec.EllipticCurvePublicKey) -> None:
        """Check the signature with the issuer's key; raise :class:`WrongData` if it fails."""
        if self.gp_format:
            data, signature = self.signed_data, self.signature
            algorithm = ec.ECDSA(signature_hash(issuer_key.curve))
        else:
            cert = x509.load_der_x509_certificate(self.raw)
            data, signature = cert.tbs_certificate_bytes, cert.signature
            hash_algorithm = cert.signature_hash_algorithm
            if hash_algorithm is None:
                raise WrongData("X.509 certificate has no signature hash algorithm")
            algorithm = ec.ECDSA(hash_algorithm)
        try:
            issuer_key.verify(_der_signature(signature, issuer_key.curve), data, algorithm)
        except InvalidSignature:
            raise WrongData("certificate signature does not verify") from None


def _der_signature(signature: bytes, curve: ec.EllipticCurve) -> bytes:
    """Accept DER or the raw ``r || s`` form."""
    size = (curve.key_size + 7) // 8
    if len(signature) == 2 * size and signature[0] != 0x30:
        return encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )
    return signature


def parse_gp_certificate(raw: bytes) -> Scp11Certificate:
    outer, end = tlv.parse_one(raw)
    if outer.tag != TAG_GP_CERTIFICATE or end != len(raw):
        raise WrongData("not a single GP SCP11 certificate (tag 7F21)")
    items = outer.children()
    signed = b""
    signature = b""
    for item in items:
        if item.tag == TAG_SIGNATURE:
            signature = item.value
            break
        signed += item.to_bytes()
    if not signature:
        raise WrongData("GP certificate has no signature (5F37)")
    key_tlv = tlv.require(items, TAG_PUBLIC_KEY, "GP certificate")
    key_items = key_tlv.children()
    point = tlv.require(key_items, 0xB0, "GP certificate public key").value
    reference = tlv.find(key_items, 0xF0)
    ref = reference.value[0] if reference is not None and reference.value else 0x00
    curve = KEY_PARAMETER_CURVES.get(ref)
    if curve is None:
        raise WrongData(f"unsupported key parameter reference {ref:02X}")
    return Scp11Certificate(
        raw=bytes(raw),
        public_key=load_point(curve, point),
        gp_format=True,
        serial=_value(items, 0x93),
        ca_kloc_id=_value(items, 0x42),
        subject_id=_value(items, 0x5F20),
        key_usage=_value(items, 0x95),
        signed_data=signed,
        signature=signature,
    )


def _value(items: list[tlv.Tlv], tag: int) -> bytes:
    item = tlv.find(items, tag)
    return item.value if item is not None else b""


def parse_x509_certificate(raw: bytes) -> Scp11Certificate:
    try:
        cert = x509.load_der_x509_certificate(raw)
        key = cert.public_key()
    except ValueError as exc:
        raise WrongData(f"not an X.509 certificate: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise WrongData("X.509 certificate does not carry an EC public key")
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8 or 1, "big")
    return Scp11Certificate(raw=bytes(raw), public_key=key, gp_format=False, serial=serial)


def parse_certificates(data: bytes) -> list[Scp11Certificate]:
    """Parse concatenated certificates (GP ``7F21`` or X.509 ``30``)."""
    out: list[Scp11Certificate] = []
    offset = 0
    while offset < len(data):
        item, end = tlv.parse_one(data, offset)
        raw = data[offset:end]
        if item.tag == TAG_GP_CERTIFICATE:
            out.append(parse_gp_certificate(raw))
        elif item.tag == 0x30:
            out.append(parse_x509_certificate(raw))
        else:
            raise WrongData(f"tag {item.tag:X} is neither a GP (7F21) nor an X.509 certificate")
        offset = end
    if not out:
        raise WrongData("no certificate found")
    return out


def parse_certificate_store(data: bytes) -> list[Scp11Certificate]:
    """Parse a GET DATA ``BF21`` response (or its bare contents); the leaf is last."""
    first, end = tlv.parse_one(data)
    if first.tag == TAG_CERTIFICATE_STORE:
        if end != len(data):
            raise WrongData("trailing bytes after the BF21 certificate store")
        return parse_certificates(first.value)
    return parse_certificates(data)


def build_gp_certificate(
    *,
    serial: bytes,
    ca_kloc_id: bytes,
    subject_id: bytes,
    public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    key_usage: bytes = b"\x00\x80",
) -> bytes:
    """Issue a GP SCP11 certificate (7F21) signed by ``signer`` (ECDSA, DER signature)."""
    key_object = tlv.encode(0xB0, point_bytes(public_key)) + tlv.encode(
        0xF0, bytes((curve_parameter_reference(public_key.curve),))
    )
    body = (
        tlv.encode(0x93, serial)
        + tlv.encode(0x42, ca_kloc_id)
        + tlv.encode(0x5F20, subject_id)
        + tlv.encode(0x95, key_usage)
        + tlv.encode(TAG_PUBLIC_KEY, key_object)
    )
    signature = signer.sign(body, ec.ECDSA(signature_hash(signer.curve)))
    return tlv.encode(TAG_GP_CERTIFICATE, body + tlv.encode(TAG_SIGNATURE, signature))
