"""SCP02 (GP Card Specification 2.2 appendix E), host side, only as far as the public vectors go.

3DES session keys from the 2-byte sequence counter, 3DES card/host cryptograms, the retail-MAC
C-MAC with ICV encryption ("i" = 55 family) and optional C-DECRYPTION. SCP02 is here to
interoperate with old cards and to replay the vector file; new work uses SCP03 or SCP11.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from smarthydra.card.gp.apdu import CommandApdu, ResponseApdu
from smarthydra.card.gp.errors import (
    AuthenticationFailed,
    ConditionsNotSatisfied,
    ConfigurationError,
    MalformedApdu,
    WrongData,
)
from smarthydra.card.gp.kdf import (
    DES_BLOCK,
    constant_time_equal,
    des3_cbc_encrypt,
    des_ecb_encrypt,
    mac_3des,
    mac_retail,
    pad80,
)

SCP02_ID = 0x02
CONSTANT_C_MAC = b"\x01\x01"
CONSTANT_R_MAC = b"\x01\x02"
CONSTANT_DEK = b"\x01\x81"
CONSTANT_ENC = b"\x01\x82"

C_MAC = 0x01
C_DECRYPTION = 0x02


@dataclass(frozen=True)
class Scp02StaticKeys:
    enc: bytes
    mac: bytes
    dek: bytes
    kvn: int = 0x20

    def __post_init__(self) -> None:
        for name in ("enc", "mac", "dek"):
            if len(getattr(self, name)) != 16:
                raise ConfigurationError(f"SCP02 {name} key must be a 16-byte 3DES key")


@dataclass(frozen=True)
class Scp02SessionKeys:
    s_enc: bytes
    s_mac: bytes
    s_rmac: bytes
    s_dek: bytes


def derive_scp02_session_keys(keys: Scp02StaticKeys, sequence_counter: bytes) -> Scp02SessionKeys:
    if len(sequence_counter) != 2:
        raise ConfigurationError("the SCP02 sequence counter is 2 bytes")

    def derive(key: bytes, constant: bytes) -> bytes:
        return des3_cbc_encrypt(key, bytes(DES_BLOCK), constant + sequence_counter + bytes(12))

    return Scp02SessionKeys(
        s_enc=derive(keys.enc, CONSTANT_ENC),
        s_mac=derive(keys.mac, CONSTANT_C_MAC),
        s_rmac=derive(keys.mac, CONSTANT_R_MAC),
        s_dek=derive(keys.dek, CONSTANT_DEK),
    )


@dataclass(frozen=True)
class Scp02InitializeUpdateResponse:
    key_diversification_data: bytes
    kvn: int
    sequence_counter: bytes
    card_challenge: bytes
    card_cryptogram: bytes

    @classmethod
    def parse(cls, data: bytes) -> Scp02InitializeUpdateResponse:
        if len(data) != 28:
            raise WrongData(f"SCP02 INITIALIZE UPDATE response is 28 bytes, got {len(data)}")
        if data[11] != SCP02_ID:
            raise WrongData(f"card answered for SCP{data[11]:02X}, not SCP02")
        return cls(data[:10], data[10], data[12:14], data[14:20], data[20:28])


class Scp02HostSession:
    """Host side of SCP02 with C-MAC (and optionally C-DECRYPTION); ICV encryption on."""

    def __init__(
        self,
        keys: Scp02StaticKeys,
        *,
        host_challenge: bytes | None = None,
        kvn: int | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.keys = keys
        self.host_challenge = random_bytes(8) if host_challenge is None else host_challenge
        if len(self.host_challenge) != 8:
            raise ConfigurationError("the SCP02 host challenge is 8 bytes")
        self.kvn = keys.kvn if kvn is None else kvn
        self.session: Scp02SessionKeys | None = None
        self.card: Scp02InitializeUpdateResponse | None = None
        self.security_level = 0
        self.icv = bytes(DES_BLOCK)
        self.open = False

    def initialize_update(self) -> bytes:
        return CommandApdu(0x80, 0x50, self.kvn, 0x00, self.host_challenge, 0x00).to_bytes()

    def process_initialize_update_response(self, response: bytes) -> Scp02InitializeUpdateResponse:
        rsp = ResponseApdu.parse(response)
        if rsp.sw != 0x9000:
            raise AuthenticationFailed(f"INITIALIZE UPDATE failed with SW {rsp.sw:04X}", sw=rsp.sw)
        parsed = Scp02InitializeUpdateResponse.parse(rsp.data)
        session = derive_scp02_session_keys(self.keys, parsed.sequence_counter)
        expected = mac_3des(
            session.s_enc, self.host_challenge + parsed.sequence_counter + parsed.card_challenge
        )
        if not constant_time_equal(expected, parsed.card_cryptogram):
            raise AuthenticationFailed("SCP02 card cryptogram does not verify: wrong keys?")
        self.session, self.card = session, parsed
        return parsed

    @property
    def host_cryptogram(self) -> bytes:
        if self.session is None or self.card is None:
            raise ConditionsNotSatisfied("no INITIALIZE UPDATE response processed yet")
        return mac_3des(
            self.session.s_enc,
            self.card.sequence_counter + self.card.card_challenge + self.host_challenge,
        )

    def _mac(self, data: bytes) -> bytes:
        assert self.session is not None
        mac = mac_retail(self.session.s_mac, data, self.icv)
        # ICV encryption: the next ICV is the MAC encrypted with the first half of S-MAC.
        self.icv = des_ecb_encrypt(self.session.s_mac[:8], mac)
        return mac

    def external_authenticate(self, security_level: int = C_MAC) -> bytes:
        if security_level not in (0x00, C_MAC, C_MAC | C_DECRYPTION):
            raise ConfigurationError("SCP02 here supports security levels 00, 01 and 03")
        cryptogram = self.host_cryptogram
        self.icv = bytes(DES_BLOCK)
        header = bytes((0x84, 0x82, security_level, 0x00, 0x10))
        mac = self._mac(header + cryptogram)
        self.security_level = security_level
        self.open = True
        return header + cryptogram + mac

    def wrap(self, command: bytes) -> bytes:
        if not self.open or self.session is None:
            raise ConditionsNotSatisfied("the SCP02 channel is not open")
        apdu = CommandApdu.parse(command)
        if not self.security_level & C_MAC:
            return apdu.to_bytes()
        lc = len(apdu.data) + 8
        cla = apdu.cla | 0x04
        mac = self._mac(bytes((cla, apdu.ins, apdu.p1, apdu.p2, lc)) + apdu.data)
        data = apdu.data
        if self.security_level & C_DECRYPTION and data:
            data = des3_cbc_encrypt(self.session.s_enc, bytes(DES_BLOCK), pad80(data, DES_BLOCK))
        if len(data) + 8 > 255:
            raise MalformedApdu("wrapped SCP02 command would exceed 255 bytes of data")
        out = bytes((cla, apdu.ins, apdu.p1, apdu.p2, len(data) + 8)) + data + mac
        if apdu.le is not None:
            out += bytes((apdu.le,))
        return out
