"""GBCS message security: MAC keys, MACs, signatures and sensitive-payload encryption.

Pure functions over bytes. The shared secret ``Z`` is an input: get it from
``Keystore.derive_shared_secret(label, peer_public)`` or :func:`shared_secret` with a raw key,
so nothing here touches key storage.

- MAC key: ``KDF(Z, AlgorithmID || originator || 09 CRA counter || recipient)``; the MAC is
  AES-128-GCM over no plaintext with AAD ``11 00 00 00 00 00 || general-signing part``,
  IV ``originator || 00000000``, tag truncated to 12 bytes. Commands are MAC'd by the DCC
  Access Control Broker (Z = ACB KA x device KA); responses and alerts by the device, to the
  recipient (Z = device KA x recipient KA).
- Signature: ECDSA-SHA256 over the general-signing part without ``DF`` through the end of the
  payload, carried as ``40 || r || s``.
- Sensitive payload: key ``KDF(Z, AlgorithmID || originator || 09 04 || counter || party)``
  where counter is the supplementary originator counter when present (else the originator
  counter) and party the supplementary remote party id when present (else the recipient);
  AES-128-GCM with AAD ``31``, 12-byte tag after the ciphertext.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from smarthydra.crypto import primitives
from smarthydra.crypto.keystore import Keystore
from smarthydra.gbcs.envelope import (
    COUNTER_SIZE,
    MAC_SIZE,
    SECURITY_CONTROL_MAC,
    SYSTEM_TITLE_SIZE,
    CraFlag,
    GbcsMessage,
    GeneralSigning,
    MacHeader,
    decode_general_signing,
)
from smarthydra.gbcs.errors import DecryptionFailed, GbcsEncodeError, SignatureMissing

ALGORITHM_ID = bytes.fromhex("60857406080300")
KEY_SIZE = 16
# The transaction-id "CRA flag" used in the OtherInfo for payload encryption.
ENCRYPTION_FLAG = 0x04
SENSITIVE_SECURITY_CONTROL = 0x31
SENSITIVE_HEADER = bytes([SENSITIVE_SECURITY_CONTROL, 0, 0, 0, 0])
SENSITIVE_TAG_SIZE = 12


def _check_title(value: bytes, what: str) -> None:
    if len(value) != SYSTEM_TITLE_SIZE:
        raise GbcsEncodeError(f"{what} must be {SYSTEM_TITLE_SIZE} bytes, got {len(value)}")


def _counter(value: int) -> bytes:
    if not 0 <= value < 1 << 64:
        raise GbcsEncodeError(f"counter {value} does not fit in 8 bytes")
    return value.to_bytes(COUNTER_SIZE, "big")


def shared_secret(
    private_key: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey
) -> bytes:
    """Z from a raw private key (tests, RTDS); devices use ``Keystore.derive_shared_secret``."""
    return primitives.ecdh(private_key, peer)


def iv_for(originator: bytes) -> bytes:
    """The GCM IV: originator system title then a zero invocation counter."""
    _check_title(originator, "originator system title")
    return originator + b"\x00\x00\x00\x00"


# --- MAC ------------------------------------------------------------------------------------


def mac_other_info(originator: bytes, cra_flag: int, counter: int, recipient: bytes) -> bytes:
    _check_title(originator, "originator system title")
    _check_title(recipient, "recipient system title")
    if cra_flag not in tuple(CraFlag):
        raise GbcsEncodeError(f"CRA flag {cra_flag} is not 1, 2 or 3")
    return ALGORITHM_ID + originator + bytes([9, cra_flag]) + _counter(counter) + recipient


def mac_key(z: bytes, originator: bytes, cra_flag: int, counter: int, recipient: bytes) -> bytes:
    """The 16-byte AES key that MACs one message."""
    return primitives.kdf_single_step_sha256(
        z, mac_other_info(originator, cra_flag, counter, recipient), KEY_SIZE
    )


def message_mac_key(z: bytes, message: GbcsMessage | MacHeader | GeneralSigning) -> bytes:
    """:func:`mac_key` with the originator, CRA flag, counter and recipient of ``message``."""
    gs = message.general_signing if isinstance(message, GbcsMessage) else message
    return mac_key(z, gs.originator, gs.cra_flag, gs.originator_counter, gs.recipient)


def mac_aad(general_signing: bytes, security_control: int = SECURITY_CONTROL_MAC) -> bytes:
    # Six bytes before the APDU: the control byte and five zeros (see the conformance notes).
    return bytes([security_control]) + b"\x00" * 5 + general_signing


def compute_mac(
    key: bytes,
    originator: bytes,
    general_signing: bytes,
    security_control: int = SECURITY_CONTROL_MAC,
) -> bytes:
    """The 12-byte MAC over the general-signing part's wire bytes."""
    return primitives.gmac(
        key, iv_for(originator), mac_aad(general_signing, security_control), MAC_SIZE
    )


def verify_mac(key: bytes, message: GbcsMessage | MacHeader) -> bool:
    """Check a message's MAC with a key from :func:`mac_key`. Never raises on a bad MAC."""
    if isinstance(message, MacHeader):
        authenticated, mac, control = message.authenticated, message.mac, message.security_control
    else:
        if message.mac is None:
            return False
        authenticated, mac, control = (
            message.general_signing.wire(),
            message.mac,
            message.security_control,
        )
    if len(mac) != MAC_SIZE:
        return False
    return primitives.gmac_verify(
        key, iv_for(message.originator), mac_aad(authenticated, control), mac
    )


# --- Signatures -----------------------------------------------------------------------------


def signed_data(general_signing: GeneralSigning | bytes) -> bytes:
    """The bytes a GBCS signature covers (general-signing without DF, through the payload).

    Given bytes, they must be a pre-command (general-signing with no signature field, or with
    the signature field ``00``): everything after ``DF`` is signed except that field.
    """
    if isinstance(general_signing, GeneralSigning):
        return general_signing.signed_data()
    return decode_general_signing(general_signing).signed_data()


def sign(
    general_signing: GeneralSigning,
    *,
    keystore: Keystore | None = None,
    label: str | None = None,
    private_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """The 64-byte ``r || s`` over :func:`signed_data`, with a keystore label or a raw key."""
    data = general_signing.signed_data()
    if private_key is not None:
        return primitives.ecdsa_sign(private_key, data)
    if keystore is None or label is None:
        raise GbcsEncodeError("sign with keystore= and label=, or with private_key=")
    return keystore.sign(label, data)


def verify_signature(
    message: GbcsMessage | GeneralSigning, public_key: ec.EllipticCurvePublicKey
) -> bool:
    """Verify the signature of a signed message; raises :class:`SignatureMissing` if unsigned."""
    gs = message.general_signing if isinstance(message, GbcsMessage) else message
    if not gs.signature:
        raise SignatureMissing("the message carries no signature")
    return primitives.ecdsa_verify(public_key, gs.signed_data(), gs.signature)


# --- Sensitive payloads ---------------------------------------------------------------------


def encryption_other_info(originator: bytes, counter: int, party: bytes) -> bytes:
    _check_title(originator, "originator system title")
    _check_title(party, "recipient / supplementary remote party id")
    return ALGORITHM_ID + originator + bytes([9, ENCRYPTION_FLAG]) + _counter(counter) + party


def encryption_key(z: bytes, originator: bytes, counter: int, party: bytes) -> bytes:
    """The 16-byte key for a sensitive payload; see :func:`message_encryption_key`."""
    return primitives.kdf_single_step_sha256(
        z, encryption_other_info(originator, counter, party), KEY_SIZE
    )


def encryption_parameters(message: GbcsMessage | GeneralSigning) -> tuple[bytes, int, bytes]:
    """(originator, counter, party) for the payload key, with the supplementary overrides.

    ``party`` is also whose key-agreement key pairs with the originator's to give Z.
    """
    gs = message.general_signing if isinstance(message, GbcsMessage) else message
    other = gs.other_information
    counter = (
        other.supplementary_originator_counter
        if other.supplementary_originator_counter is not None
        else gs.originator_counter
    )
    party = other.supplementary_remote_party_id or gs.recipient
    return gs.originator, counter, party


def message_encryption_key(z: bytes, message: GbcsMessage | GeneralSigning) -> bytes:
    return encryption_key(z, *encryption_parameters(message))


def encrypt_payload(key: bytes, originator: bytes, plaintext: bytes) -> bytes:
    """AES-128-GCM, AAD ``31``; returns ``ciphertext || tag(12)``."""
    ciphertext, tag = primitives.aes_gcm_encrypt(
        key, iv_for(originator), plaintext, bytes([SENSITIVE_SECURITY_CONTROL]), SENSITIVE_TAG_SIZE
    )
    return ciphertext + tag


def decrypt_payload(key: bytes, originator: bytes, ciphertext_and_tag: bytes) -> bytes:
    """Inverse of :func:`encrypt_payload`; raises :class:`DecryptionFailed`."""
    if len(ciphertext_and_tag) < SENSITIVE_TAG_SIZE:
        raise DecryptionFailed(
            f"{len(ciphertext_and_tag)} bytes cannot hold a {SENSITIVE_TAG_SIZE}-byte tag"
        )
    try:
        return primitives.aes_gcm_decrypt(
            key,
            iv_for(originator),
            ciphertext_and_tag[:-SENSITIVE_TAG_SIZE],
            bytes([SENSITIVE_SECURITY_CONTROL]),
            ciphertext_and_tag[-SENSITIVE_TAG_SIZE:],
        )
    except primitives.AuthenticationFailed:
        raise DecryptionFailed("sensitive payload does not authenticate with this key") from None


def seal_sensitive(key: bytes, originator: bytes, plaintext: bytes) -> bytes:
    """``31 00000000 || ciphertext || tag``: the protected block as carried in payloads."""
    return SENSITIVE_HEADER + encrypt_payload(key, originator, plaintext)


def open_sensitive(key: bytes, originator: bytes, block: bytes) -> bytes:
    """Inverse of :func:`seal_sensitive`."""
    if block[: len(SENSITIVE_HEADER)] != SENSITIVE_HEADER:
        raise DecryptionFailed(f"protected block starts {block[:5].hex()}, expected 3100000000")
    return decrypt_payload(key, originator, block[len(SENSITIVE_HEADER) :])
