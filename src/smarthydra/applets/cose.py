"""The two envelopes Hydra applets speak to their parties: signed statements and sealed messages.

Both are standard constructions over ``cryptography`` (through :mod:`smarthydra.crypto.primitives`);
nothing here is a new primitive.

**Signed statement** - a COSE_Sign1 object (RFC 9052 §4.2) with algorithm ES256 (ECDSA P-256
with SHA-256, signature ``r || s``), the signer's key identifier in the unprotected header,
and a canonical-CBOR payload (RFC 8949 §4.2.1). The bytes signed are the Sig_structure
``["Signature1", protected, h'', payload]``. A verifier needs only the signer's public key.

**Sealed message** - ephemeral-static ECDH on P-256 to the recipient's key-agreement key
(the ECIES shape of SEC 1 §5.1), the key derived with the NIST SP 800-56A single-step KDF
(SHA-256) GBCS already uses, and AES-128-GCM with a 16-byte tag::

    sealed = [protected: bstr .cbor {"alg": "ECDH-ES+SP800-56A/A128GCM",
                                      "epk": bstr (x || y), "from": tstr, "to": tstr},
              iv: bstr (12), ciphertext-and-tag: bstr]
    key    = KDF(Z, OtherInfo = lv("A128GCM") || lv(from) || lv(to) || lv(epk), 16 bytes)
    AAD    = protected

The sender is named in the header and bound into the key, so a message opened by anyone but
the holder of the recipient's private key fails its tag, and a message cannot be re-labelled.
In the card the ephemeral key lives in a key handle (:class:`EphemeralAgreement`), so ``Z``
is computed inside the chip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives

ES256 = -7
COSE_SIGN1_TAG = 18
SEAL_ALGORITHM = "ECDH-ES+SP800-56A/A128GCM"


class EnvelopeError(Exception):
    """A signed statement or sealed message is malformed, or does not verify or open."""


def canonical(value: Any) -> bytes:
    """Deterministic CBOR (RFC 8949 §4.2.1): the same value always gives the same bytes."""
    return cbor2.dumps(value, canonical=True)


def _loads(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types for bad input
        raise EnvelopeError(f"{what} is not CBOR: {exc}") from None


# --- COSE_Sign1 ------------------------------------------------------------------------------


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return canonical(["Signature1", protected, b"", payload])


def sign1(payload: Any, kid: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    """A COSE_Sign1 over ``canonical(payload)``; ``sign`` is ECDSA-SHA256 giving ``r || s``."""
    body = canonical(payload)
    protected = canonical({1: ES256})
    signature = sign(_sig_structure(protected, body))
    return canonical(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {4: kid}, body, signature]))


@dataclass(frozen=True)
class SignedStatement:
    kid: bytes
    payload: Any
    payload_bytes: bytes
    protected: bytes
    signature: bytes

    def verify(self, public_key: ec.EllipticCurvePublicKey) -> bool:
        return primitives.ecdsa_verify(
            public_key, _sig_structure(self.protected, self.payload_bytes), self.signature)


def parse_sign1(data: bytes) -> SignedStatement:
    """Parse (not verify) a COSE_Sign1; raises :class:`EnvelopeError` on anything malformed."""
    obj = _loads(data, "signed statement")
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != COSE_SIGN1_TAG:
            raise EnvelopeError(f"CBOR tag {obj.tag} is not COSE_Sign1")
        obj = obj.value
    # cbor2 decodes a tagged array as a tuple and its maps as immutable mappings
    if not (isinstance(obj, list | tuple) and len(obj) == 4):
        raise EnvelopeError("COSE_Sign1 is an array of 4")
    protected, unprotected, body, signature = obj
    if not (isinstance(protected, bytes) and isinstance(unprotected, Mapping)
            and isinstance(body, bytes) and isinstance(signature, bytes)):
        raise EnvelopeError("COSE_Sign1 fields have the wrong types")
    header = _loads(protected, "protected header")
    if header != {1: ES256}:
        raise EnvelopeError("only ES256 signed statements are accepted")
    kid = unprotected.get(4, b"")
    if not isinstance(kid, bytes):
        raise EnvelopeError("kid is a byte string")
    return SignedStatement(kid, _loads(body, "payload"), body, protected, signature)


def verify_sign1(data: bytes, public_key: ec.EllipticCurvePublicKey) -> Any:
    """The payload of a COSE_Sign1 that verifies under ``public_key``."""
    statement = parse_sign1(data)
    if not statement.verify(public_key):
        raise EnvelopeError("signature does not verify")
    return statement.payload


# --- sealed messages -------------------------------------------------------------------------


class Agreement(Protocol):
    """An ephemeral key pair: its public ``x || y`` and ECDH with a peer's ``x || y``."""

    def public(self) -> bytes: ...

    def ecdh(self, peer_xy: bytes) -> bytes: ...


@dataclass
class HostAgreement:
    """An off-card ephemeral key (for parties sealing to an applet, and for tests)."""

    key: ec.EllipticCurvePrivateKey

    @classmethod
    def fresh(cls) -> HostAgreement:
        return cls(primitives.generate_private_key())

    def public(self) -> bytes:
        return primitives.public_key_to_xy(self.key.public_key())

    def ecdh(self, peer_xy: bytes) -> bytes:
        return primitives.ecdh(self.key, primitives.public_key_from_xy(peer_xy))


def _lv(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def _key(z: bytes, sender: str, recipient: str, epk: bytes) -> bytes:
    other_info = _lv(b"A128GCM") + _lv(sender.encode()) + _lv(recipient.encode()) + _lv(epk)
    return primitives.kdf_single_step_sha256(z, other_info, 16)


def seal(plaintext: bytes, *, sender: str, recipient: str, recipient_xy: bytes,
         ephemeral: Agreement, iv: bytes) -> bytes:
    """Encrypt ``plaintext`` so only the holder of ``recipient_xy``'s private key can read it."""
    if len(iv) != 12:
        raise EnvelopeError("the GCM IV is 12 bytes")
    epk = ephemeral.public()
    z = ephemeral.ecdh(recipient_xy)
    protected = canonical({"alg": SEAL_ALGORITHM, "epk": epk, "from": sender, "to": recipient})
    ciphertext, tag = primitives.aes_gcm_encrypt(_key(z, sender, recipient, epk), iv, plaintext,
                                                 protected, 16)
    return canonical([protected, iv, ciphertext + tag])


@dataclass(frozen=True)
class SealedHeader:
    sender: str
    recipient: str
    epk: bytes


def _parse_sealed(data: bytes) -> tuple[SealedHeader, bytes, bytes, bytes]:
    obj = _loads(data, "sealed message")
    if not (isinstance(obj, list) and len(obj) == 3 and all(isinstance(x, bytes) for x in obj)):
        raise EnvelopeError("a sealed message is [protected, iv, ciphertext]")
    protected, iv, body = obj
    header = _loads(protected, "sealed header")
    if not isinstance(header, dict) or header.get("alg") != SEAL_ALGORITHM:
        raise EnvelopeError("unknown sealing algorithm")
    sender, recipient, epk = header.get("from"), header.get("to"), header.get("epk")
    if not (isinstance(sender, str) and isinstance(recipient, str) and isinstance(epk, bytes)):
        raise EnvelopeError("sealed header lacks from/to/epk")
    if len(iv) != 12 or len(body) < 16:
        raise EnvelopeError("sealed message: bad IV or too short")
    return SealedHeader(sender, recipient, epk), protected, iv, body


def sealed_header(data: bytes) -> SealedHeader:
    """Who a sealed message is from and to (what a carrier such as the DCC can see)."""
    return _parse_sealed(data)[0]


def open_sealed(data: bytes, private_key: ec.EllipticCurvePrivateKey) -> tuple[SealedHeader, bytes]:
    """Decrypt a sealed message; :class:`EnvelopeError` when it is not for this key."""
    header, protected, iv, body = _parse_sealed(data)
    try:
        z = primitives.ecdh(private_key, primitives.public_key_from_xy(header.epk))
        key = _key(z, header.sender, header.recipient, header.epk)
        plaintext = primitives.aes_gcm_decrypt(key, iv, body[:-16], protected, body[-16:])
    except primitives.CryptoError as exc:
        raise EnvelopeError(f"cannot open: {exc}") from None
    return header, plaintext
