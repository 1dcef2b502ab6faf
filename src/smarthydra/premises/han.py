"""HAN link security: install codes, link keys and protected HAN frames (ZigBee style).

- A device's install code (printed on it, given to the hub by CCS01) becomes the link key the
  ZigBee way: the install code with its CRC-16 appended is hashed with the AES-MMO hash
  (Matyas-Meyer-Oseas over AES-128, ZigBee spec B.6). ``cryptography`` has no MMO hash, so
  :func:`aes_mmo_hash` implements the published construction over its AES-ECB block function
  (checked against the ZigBee install-code test vector in the tests); ``cryptography``
  provides the AES block function (via :mod:`smarthydra.crypto.primitives`).
- A HAN frame is ``source EUI-64 (8) || frame counter (4) || ciphertext || MIC (4)``, sealed
  with AES-CCM* at ZigBee security level 5 (ENC-MIC-32): nonce = source || counter ||
  security control, 4-byte MIC, header as associated data. AES-CCM is from ``cryptography``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from smarthydra.crypto.primitives import aes_ecb_encrypt_block

BLOCK = 16
SECURITY_CONTROL = 0x05  # security level 5: ENC-MIC-32
MIC_SIZE = 4
HEADER_SIZE = 12
VALID_INSTALL_CODE_SIZES = (6, 8, 12, 16)


class HanSecurityError(Exception):
    """A HAN frame or install code fails the link-security checks."""


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25 (CCITT, reflected), the install-code check value."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def aes_mmo_hash(message: bytes) -> bytes:
    """ZigBee AES-MMO hash (messages shorter than 2^16 bits)."""
    bits = len(message) * 8
    if bits >= 1 << 16:
        raise ValueError("AES-MMO here hashes messages shorter than 8 KiB")
    padded = message + b"\x80"
    while len(padded) % BLOCK != BLOCK - 2:
        padded += b"\x00"
    padded += bits.to_bytes(2, "big")
    digest = bytes(BLOCK)
    for offset in range(0, len(padded), BLOCK):
        block = padded[offset : offset + BLOCK]
        digest = bytes(a ^ b for a, b in zip(aes_ecb_encrypt_block(digest, block), block, strict=True))
    return digest


def with_crc(install_code: bytes) -> bytes:
    """The install code as printed: the code and its CRC-16 (little-endian)."""
    return install_code + crc16_x25(install_code).to_bytes(2, "little")


def link_key_from_install_code(install_code: bytes) -> bytes:
    """The link key for ``install_code`` (without CRC: the CRC is added, as ZigBee does)."""
    if len(install_code) not in VALID_INSTALL_CODE_SIZES:
        raise HanSecurityError(f"an install code is 6, 8, 12 or 16 bytes, not {len(install_code)}")
    return aes_mmo_hash(with_crc(install_code))


def _nonce(source: bytes, counter: int) -> bytes:
    return source + counter.to_bytes(4, "little") + bytes([SECURITY_CONTROL])


@dataclass(frozen=True)
class HanFrame:
    source: bytes
    counter: int
    body: bytes  # ciphertext || MIC

    def encode(self) -> bytes:
        return self.source + self.counter.to_bytes(4, "little") + self.body

    @classmethod
    def decode(cls, raw: bytes) -> HanFrame:
        if len(raw) < HEADER_SIZE + MIC_SIZE:
            raise HanSecurityError(f"a HAN frame is at least 16 bytes, got {len(raw)}")
        return cls(raw[:8], int.from_bytes(raw[8:12], "little"), raw[12:])


def protect(link_key: bytes, source: bytes, counter: int, plaintext: bytes) -> bytes:
    header = source + counter.to_bytes(4, "little")
    body = AESCCM(link_key, tag_length=MIC_SIZE).encrypt(_nonce(source, counter), plaintext, header)
    return header + body


def unprotect(link_key: bytes, frame: HanFrame) -> bytes:
    header = frame.source + frame.counter.to_bytes(4, "little")
    try:
        return AESCCM(link_key, tag_length=MIC_SIZE).decrypt(
            _nonce(frame.source, frame.counter), frame.body, header
        )
    except InvalidTag:
        raise HanSecurityError("HAN frame MIC does not verify") from None


@dataclass
class HanLink:
    """A device's end of its link with the hub: its link key and frame counters."""

    eui: bytes
    link_key: bytes
    outgoing: int = 0
    incoming: int = -1

    def seal(self, plaintext: bytes) -> bytes:
        self.outgoing += 1
        return protect(self.link_key, self.eui, self.outgoing, plaintext)

    def open(self, raw: bytes, expected_source: bytes) -> bytes:
        frame = HanFrame.decode(raw)
        if frame.source != expected_source:
            raise HanSecurityError("HAN frame from an unexpected source")
        if frame.counter <= self.incoming:
            raise HanSecurityError("HAN frame counter replayed")
        plaintext = unprotect(self.link_key, frame)
        self.incoming = frame.counter
        return plaintext
