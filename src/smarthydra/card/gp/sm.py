"""SCP03 secure messaging (GP Amendment D section 6.2), shared by SCP03 and SCP11.

One :class:`SecureMessaging` object holds the session keys, the security level, the MAC chaining
value and the encryption counter of one secure channel session. The host and the card each keep
one; the host calls :meth:`host_wrap` / :meth:`host_unwrap`, the card :meth:`card_unwrap` /
:meth:`card_wrap`. Everything is over bytes; nothing here does I/O.

Rules (Amendment D 6.2.4 - 6.2.7):
* C-MAC = AES-CMAC(S-MAC, chaining value || header with the SM bit set, logical channel zero and
  Lc counting the MAC || data); the full 16-byte result is the next chaining value, its first 8
  (S8) or 16 (S16) bytes are sent.
* C-DECRYPTION: the encryption counter is incremented for every command (even one without data);
  data is padded (80 00 ...) and AES-CBC encrypted with ICV = AES(S-ENC, counter as 16 bytes).
* R-MAC = AES-CMAC(S-RMAC, chaining value of the command || response data || SW), only on 9000
  and warnings (62xx, 63xx); an error status word goes back bare.
* R-ENCRYPTION: ICV = AES(S-ENC, 80 || counter[1:]), same counter as the command's.
"""

from __future__ import annotations

from dataclasses import dataclass

from smarthydra.card.gp.apdu import CommandApdu, ResponseApdu
from smarthydra.card.gp.errors import (
    ConfigurationError,
    IncorrectSecureMessagingData,
    MalformedApdu,
    SecurityStatusNotSatisfied,
)
from smarthydra.card.gp.kdf import AES_BLOCK, check_aes_key, constant_time_equal, pad80, unpad80
from smarthydra.crypto.primitives import (
    aes_cbc_decrypt,
    aes_cbc_encrypt,
    aes_cmac,
    aes_ecb_encrypt_block,
)

C_MAC = 0x01
C_DECRYPTION = 0x02
R_MAC = 0x10
R_ENCRYPTION = 0x20
AUTHENTICATED = 0x80  # GP CS 10.x: bit 8 of the security level means "authenticated" only

VALID_SECURITY_LEVELS = frozenset({0x00, 0x01, 0x03, 0x11, 0x13, 0x33})


def check_security_level(level: int) -> int:
    if level not in VALID_SECURITY_LEVELS:
        raise ConfigurationError(
            f"security level {level:02X} is not one of "
            + ", ".join(f"{v:02X}" for v in sorted(VALID_SECURITY_LEVELS))
        )
    return level


def describe_security_level(level: int) -> str:
    parts = [
        name
        for bit, name in (
            (C_MAC, "C-MAC"),
            (C_DECRYPTION, "C-DECRYPTION"),
            (R_MAC, "R-MAC"),
            (R_ENCRYPTION, "R-ENCRYPTION"),
        )
        if level & bit
    ]
    return "+".join(parts) or "none"


@dataclass(frozen=True)
class SessionKeys:
    """S-ENC, S-MAC, S-RMAC and (SCP11 only; SCP03 uses the static DEK) S-DEK."""

    s_enc: bytes
    s_mac: bytes
    s_rmac: bytes
    s_dek: bytes | None = None

    def __post_init__(self) -> None:
        check_aes_key(self.s_enc, "S-ENC")
        check_aes_key(self.s_mac, "S-MAC")
        check_aes_key(self.s_rmac, "S-RMAC")
        if self.s_dek is not None:
            check_aes_key(self.s_dek, "S-DEK")


def _sm_bits(cla: int) -> tuple[int, int]:
    """(secure-messaging indicator bit, logical-channel mask) for this class byte."""
    if cla & 0x40:  # further interindustry class: channels 4..19
        return 0x20, 0x0F
    return 0x04, 0x03


def mac_cla(cla: int) -> int:
    """The class byte the C-MAC covers: SM indicated, logical channel zero, bit 4 zero."""
    sm_bit, channel = _sm_bits(cla)
    if cla & 0x40:
        return (cla & ~channel) | sm_bit
    return (cla & ~channel & ~0x08) | sm_bit


def lc_field(length: int, extended: bool) -> bytes:
    """Lc as the C-MAC covers it: as it was sent, one byte or (extended length) 00 || 2 bytes.

    A host that sends an extended-length APDU MACs the three-byte Lc it sends (yubikit does,
    as YubiKeys and Java Card's APDU buffer expect), so the card must MAC the same bytes."""
    return b"\x00" + length.to_bytes(2, "big") if extended else bytes((length,))


def has_sm_indication(cla: int) -> bool:
    sm_bit, _ = _sm_bits(cla)
    return bool(cla & sm_bit)


def without_sm_indication(cla: int) -> int:
    sm_bit, _ = _sm_bits(cla)
    return cla & ~sm_bit


class SecureMessaging:
    """The per-session state machine of SCP03-style command and response protection."""

    def __init__(
        self,
        keys: SessionKeys,
        security_level: int,
        mac_length: int,
        mac_chaining_value: bytes = bytes(AES_BLOCK),
    ) -> None:
        if mac_length not in (8, 16):
            raise ConfigurationError("the MAC length is 8 (S8 mode) or 16 (S16 mode)")
        if len(mac_chaining_value) != AES_BLOCK:
            raise ConfigurationError("the MAC chaining value is 16 bytes")
        self.keys = keys
        self.security_level = check_security_level(security_level)
        self.mac_length = mac_length
        self.mac_chaining_value = bytes(mac_chaining_value)
        self.encryption_counter = 0
        self.open = True

    # --- shared pieces ------------------------------------------------------------------------

    def command_mac(self, header: bytes, data: bytes) -> bytes:
        """Chain and return the full 16-byte C-MAC over ``header`` (CLA INS P1 P2 Lc) and data."""
        full = aes_cmac(self.keys.s_mac, self.mac_chaining_value + header + data)
        self.mac_chaining_value = full
        return full

    def _icv(self, counter: int, response: bool) -> bytes:
        block = bytearray(counter.to_bytes(AES_BLOCK, "big"))
        if response:
            block[0] = 0x80
        return aes_ecb_encrypt_block(self.keys.s_enc, bytes(block))

    def _response_mac(self, data: bytes, sw: int) -> bytes:
        full = aes_cmac(self.keys.s_rmac, self.mac_chaining_value + data + sw.to_bytes(2, "big"))
        return full[: self.mac_length]

    def _check_open(self) -> None:
        if not self.open:
            raise SecurityStatusNotSatisfied("the secure channel session is closed")

    def close(self) -> None:
        """Terminate the session (after a secure messaging failure, Amendment D 6.2.4)."""
        self.open = False

    # --- host side ----------------------------------------------------------------------------

    def host_wrap(self, command: bytes | CommandApdu) -> bytes:
        """Protect a plain command APDU for sending at the current security level."""
        self._check_open()
        apdu = command if isinstance(command, CommandApdu) else CommandApdu.parse(command)
        if has_sm_indication(apdu.cla):
            raise ConfigurationError("the command already carries the secure messaging CLA bit")
        if not self.security_level & C_MAC:
            return apdu.to_bytes()
        data = apdu.data
        if self.security_level & C_DECRYPTION:
            self.encryption_counter += 1
            if data:
                icv = self._icv(self.encryption_counter, response=False)
                data = aes_cbc_encrypt(self.keys.s_enc, icv, pad80(data))
        lc = len(data) + self.mac_length
        if lc > 255:
            raise MalformedApdu(f"wrapped command data would be {lc} bytes, more than 255")
        header = bytes((mac_cla(apdu.cla), apdu.ins, apdu.p1, apdu.p2, lc))
        mac = self.command_mac(header, data)[: self.mac_length]
        _, channel = _sm_bits(apdu.cla)
        cla = mac_cla(apdu.cla) | (apdu.cla & channel)
        out = bytes((cla, apdu.ins, apdu.p1, apdu.p2, lc)) + data + mac
        if apdu.le is not None:
            out += bytes((apdu.le,))
        return out

    def host_unwrap(self, response: bytes) -> ResponseApdu:
        """Verify the R-MAC and decrypt a response (data || SW1 SW2) at the current level."""
        self._check_open()
        rsp = ResponseApdu.parse(response)
        if not self.security_level & R_MAC or not rsp.is_success_or_warning:
            return rsp
        if len(rsp.data) < self.mac_length:
            raise IncorrectSecureMessagingData(
                f"response of {len(rsp.data)} bytes has no room for a {self.mac_length}-byte R-MAC"
            )
        body, mac = rsp.data[: -self.mac_length], rsp.data[-self.mac_length :]
        if not constant_time_equal(mac, self._response_mac(body, rsp.sw)):
            raise SecurityStatusNotSatisfied("R-MAC does not verify")
        if self.security_level & R_ENCRYPTION and body:
            if len(body) % AES_BLOCK:
                raise IncorrectSecureMessagingData("encrypted response data is not whole blocks")
            icv = self._icv(self.encryption_counter, response=True)
            body = unpad80(aes_cbc_decrypt(self.keys.s_enc, icv, body))
        return ResponseApdu(body, rsp.sw)

    # --- card side ----------------------------------------------------------------------------

    def card_unwrap(self, command: bytes, *, extended: bool = False) -> CommandApdu:
        """Verify and decrypt a received command; any failure closes the session.

        ``extended``: the command arrived as an extended-length APDU (its data re-encoded
        short in ``command``); the C-MAC then covers the three-byte Lc."""
        self._check_open()
        try:
            return self._card_unwrap(command, extended)
        except (SecurityStatusNotSatisfied, IncorrectSecureMessagingData):
            self.close()
            raise

    def _card_unwrap(self, command: bytes, extended: bool) -> CommandApdu:
        apdu = CommandApdu.parse(command)
        protected = has_sm_indication(apdu.cla)
        if not self.security_level & C_MAC:
            if protected:
                raise SecurityStatusNotSatisfied("secure messaging not expected at this level")
            return apdu
        if not protected:
            raise SecurityStatusNotSatisfied(
                f"security level {describe_security_level(self.security_level)} requires a C-MAC"
            )
        if len(apdu.data) < self.mac_length:
            raise IncorrectSecureMessagingData("command data is shorter than the C-MAC")
        body, mac = apdu.data[: -self.mac_length], apdu.data[-self.mac_length :]
        header = bytes((mac_cla(apdu.cla), apdu.ins, apdu.p1, apdu.p2)) + lc_field(
            len(apdu.data), extended)
        expected = aes_cmac(self.keys.s_mac, self.mac_chaining_value + header + body)
        if not constant_time_equal(mac, expected[: self.mac_length]):
            raise SecurityStatusNotSatisfied("C-MAC does not verify")
        self.mac_chaining_value = expected
        if self.security_level & C_DECRYPTION:
            self.encryption_counter += 1
            if body:
                if len(body) % AES_BLOCK:
                    raise IncorrectSecureMessagingData("encrypted command data is not whole blocks")
                icv = self._icv(self.encryption_counter, response=False)
                body = unpad80(aes_cbc_decrypt(self.keys.s_enc, icv, body))
        return CommandApdu(
            without_sm_indication(apdu.cla), apdu.ins, apdu.p1, apdu.p2, body, apdu.le
        )

    def card_wrap(self, data: bytes, sw: int) -> bytes:
        """Protect a response (data, SW) for sending; error status words go back bare."""
        rsp = ResponseApdu(bytes(data), sw)
        if not self.open or not self.security_level & R_MAC:
            return rsp.to_bytes()
        if not rsp.is_success_or_warning:
            return sw.to_bytes(2, "big")
        body = rsp.data
        if self.security_level & R_ENCRYPTION and body:
            icv = self._icv(self.encryption_counter, response=True)
            body = aes_cbc_encrypt(self.keys.s_enc, icv, pad80(body))
        return body + self._response_mac(body, sw) + sw.to_bytes(2, "big")
