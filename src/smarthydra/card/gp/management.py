"""GlobalPlatform card-management data, sans-I/O: shared by the security domain and the host.

Everything here is a pure function over bytes, so the card and the off-card entity compute the
same things from the same definitions (GP Card Specification 2.3.1):

* INSTALL data fields (11.5.2.3) as a list of LV fields; DELETE data (11.2.2.3);
* the Load File Data Block Hash (SHA-256 over the value of tag C4, 11.6.2.3; SHA-1/384/512
  accepted when the host sends such a hash) and DAP blocks
  (tag E2: 4F security domain AID, C3 signature; C.2/C.3): the DAP signature is over the
  Load File Data Block Hash, ECDSA P-256 with SHA-256 (raw r || s) or RSA PKCS#1 v1.5 SHA-256;
* delegated-management tokens (C.4): signed over ``P1 || P2 || Lc || data fields`` where the
  data fields are the command's data without the token and Lc is their length; same
  signature schemes as DAP;
* receipts (C.5): AES-CMAC with the receipt key over the confirmation data
  ``LV(confirmation counter) || LV(card unique data) || LV(AIDs of the operation)``;
* GET STATUS entries in the TLV format (E3 templates, 11.4.3.2) and the legacy format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from smarthydra.card.gp import tlv
from smarthydra.card.gp.errors import WrongData
from smarthydra.crypto.primitives import aes_cmac, der_to_raw_signature, raw_to_der_signature

ISD_AID = bytes.fromhex("A000000151000000")
SD_PACKAGE_AID = bytes.fromhex("A0000001515350")  # the security-domain load file (ROM)
SD_MODULE_AID = bytes.fromhex("A000000151535041")

# GP commands (CLA 80/84 unless said otherwise)
INS_DELETE = 0xE4
INS_INSTALL = 0xE6
INS_LOAD = 0xE8
INS_PUT_KEY = 0xD8
INS_SET_STATUS = 0xF0
INS_GET_STATUS = 0xF2
INS_STORE_DATA = 0xE2
INS_GET_DATA = 0xCA
INS_GET_DATA_ODD = 0xCB


class InstallP1(IntEnum):
    LOAD = 0x02
    INSTALL = 0x04
    MAKE_SELECTABLE = 0x08
    INSTALL_AND_MAKE_SELECTABLE = 0x0C
    EXTRADITION = 0x10
    PERSONALIZATION = 0x20
    REGISTRY_UPDATE = 0x40


class KeyId(IntEnum):
    """Key identifiers this card uses inside a security domain's key versions.

    SCP03 keys 1-3 (Amendment D), SCP11 keys 10-15 (Amendment F: 10 is the CA-KLOC key that
    verifies OCE certificates, 11/13/15 the SD's ECKA keys for SCP11a/b/c). The token,
    receipt and DAP keys get the identifiers 70, 71 and 73.
    """

    ENC = 0x01
    MAC = 0x02
    DEK = 0x03
    CA_KLOC = 0x10
    SCP11A = 0x11
    SCP11B = 0x13
    SCP11C = 0x15
    TOKEN = 0x70
    RECEIPT = 0x71
    DAP = 0x73


# --- LV fields --------------------------------------------------------------------------


def lv(value: bytes) -> bytes:
    """A length-value field; from 128 bytes on the length is 81 xx (GP 2.3.1 11.1.5)."""
    if len(value) > 255:
        raise WrongData(f"an LV field holds at most 255 bytes, got {len(value)}")
    if len(value) > 127:
        return b"\x81" + bytes((len(value),)) + value
    return bytes((len(value),)) + value


def parse_lvs(data: bytes) -> list[bytes]:
    fields: list[bytes] = []
    offset = 0
    while offset < len(data):
        length = data[offset]
        offset += 1
        if length == 0x81:
            if offset >= len(data):
                raise WrongData("LV length runs past the data")
            length = data[offset]
            offset += 1
        elif length > 0x7F:
            raise WrongData(f"LV length byte {length:02X} is not 00..7F or 81 xx")
        end = offset + length
        if end > len(data):
            raise WrongData("LV field runs past the data")
        fields.append(bytes(data[offset:end]))
        offset = end
    return fields


# --- INSTALL ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallData:
    """The six LV fields of an INSTALL command (unused ones empty), and the token."""

    field1: bytes = b""  # load file AID / executable load file AID / SD AID
    field2: bytes = b""  # SD AID / executable module AID
    field3: bytes = b""  # LFDB hash / application AID
    field4: bytes = b""  # load parameters / privileges
    field5: bytes = b""  # install parameters
    token: bytes = b""

    def fields_for(self, p1: int) -> bytes:
        """The data field without the token LV (what a token signs)."""
        if p1 & 0xFE == InstallP1.LOAD:
            return lv(self.field1) + lv(self.field2) + lv(self.field3) + lv(self.field4)
        return (lv(self.field1) + lv(self.field2) + lv(self.field3) + lv(self.field4)
                + lv(self.field5))

    def encode(self, p1: int) -> bytes:
        return self.fields_for(p1) + lv(self.token)

    @classmethod
    def parse(cls, p1: int, data: bytes) -> InstallData:
        fields = parse_lvs(data)
        load = p1 & 0xFE == InstallP1.LOAD
        low = 3 if p1 == InstallP1.PERSONALIZATION else (4 if load else 5)
        high = 5 if load else 6
        if not low <= len(fields) <= high:
            raise WrongData(f"INSTALL P1={p1:02X} wants {low}..{high} LV fields, got {len(fields)}")
        fields += [b""] * (6 - len(fields))
        if load:
            return cls(fields[0], fields[1], fields[2], fields[3], b"", fields[4])
        return cls(*fields[:6])


def token_data(p1: int, p2: int, fields: bytes) -> bytes:
    """GP C.4.1: P1 || P2 || Lc || data fields (the command data without the token)."""
    if len(fields) > 255:
        raise WrongData("token data fields exceed 255 bytes")
    return bytes((p1, p2, len(fields))) + fields


# --- DELETE -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeleteData:
    """DELETE data: 4F AID (object) or D0/D2 key identifier/version, B6 CRT, 9E token."""

    aid: bytes | None = None
    key_id: int | None = None
    key_version: int | None = None
    control_reference: bytes = b""
    token: bytes = b""

    def fields(self) -> bytes:
        out = b""
        if self.aid is not None:
            out += tlv.encode(0x4F, self.aid)
        if self.key_id is not None:
            out += tlv.encode(0xD0, bytes((self.key_id,)))
        if self.key_version is not None:
            out += tlv.encode(0xD2, bytes((self.key_version,)))
        if self.control_reference:
            out += tlv.encode(0xB6, self.control_reference)
        return out

    def encode(self) -> bytes:
        return self.fields() + (tlv.encode(0x9E, self.token) if self.token else b"")

    @classmethod
    def parse(cls, data: bytes) -> DeleteData:
        aid = key_id = key_version = None
        crt = token = b""
        for item in tlv.parse_all(data):
            if item.tag == 0x4F:
                if not 5 <= len(item.value) <= 16:
                    raise WrongData("an AID is 5..16 bytes")
                aid = item.value
            elif item.tag in (0xD0, 0xD2):
                if len(item.value) != 1:
                    raise WrongData("a key identifier or version is one byte")
                if item.tag == 0xD0:
                    key_id = item.value[0]
                else:
                    key_version = item.value[0]
            elif item.tag == 0xB6:
                crt = item.value
            elif item.tag == 0x9E:
                token = item.value
            else:
                raise WrongData(f"unexpected tag {item.tag:X} in DELETE data")
        if aid is None and key_id is None and key_version is None:
            raise WrongData("DELETE names neither an AID nor a key")
        if aid is not None and (key_id is not None or key_version is not None):
            raise WrongData("DELETE names both an AID and a key")
        return cls(aid, key_id, key_version, crt, token)


# --- DAP, tokens, receipts --------------------------------------------------------------


#: hash algorithms by digest length, for a Load File Data Block Hash given by the host
#: (GP 2.3.1 allows SHA-1 and the SHA-2 family; this card computes SHA-256 when none is given)
HASH_BY_LENGTH = {20: "sha1", 32: "sha256", 48: "sha384", 64: "sha512"}


def load_file_data_block_hash(load_file_data_block: bytes, length: int = 32) -> bytes:
    """The hash over the Load File Data Block (the value of tag C4): SHA-256 by default, or
    the SHA algorithm whose digest has ``length`` bytes."""
    name = HASH_BY_LENGTH.get(length)
    if name is None:
        raise WrongData(f"no hash algorithm gives {length}-byte digests")
    return hashlib.new(name, load_file_data_block).digest()


PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def sign(key: PrivateKey, message: bytes) -> bytes:
    """A DAP or token signature: ECDSA-SHA256 (raw r || s) or RSA PKCS#1 v1.5 SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return der_to_raw_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def verify(key: PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                return False
            key.verify(raw_to_der_signature(signature), message, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def dap_block(sd_aid: bytes, signature: bytes) -> bytes:
    return tlv.encode(0xE2, tlv.encode(0x4F, sd_aid) + tlv.encode(0xC3, signature))


@dataclass(frozen=True)
class LoadFile:
    """A parsed LOAD payload: DAP blocks by SD AID and the Load File Data Block."""

    daps: dict[bytes, bytes]
    data_block: bytes

    @classmethod
    def parse(cls, data: bytes) -> LoadFile:
        daps: dict[bytes, bytes] = {}
        block: bytes | None = None
        for item in tlv.parse_all(data):
            if item.tag == 0xE2 and block is None:
                children = item.children()
                aid = tlv.require(children, 0x4F, "DAP block").value
                daps[aid] = tlv.require(children, 0xC3, "DAP block").value
            elif item.tag == 0xC4 and block is None:
                block = item.value
            else:
                raise WrongData(f"unexpected tag {item.tag:X} in the load file")
        if block is None:
            raise WrongData("the load file has no C4 Load File Data Block")
        return cls(daps, block)

    def encode(self) -> bytes:
        return b"".join(dap_block(a, s) for a, s in self.daps.items()) + tlv.encode(
            0xC4, self.data_block)


def confirmation_data(counter: int, card_unique_data: bytes, aids: Sequence[bytes]) -> bytes:
    return lv(counter.to_bytes(2, "big")) + lv(card_unique_data) + b"".join(lv(a) for a in aids)


def receipt(receipt_key: bytes, counter: int, card_unique_data: bytes,
            aids: Sequence[bytes]) -> bytes:
    return aes_cmac(receipt_key, confirmation_data(counter, card_unique_data, aids))


@dataclass(frozen=True)
class Confirmation:
    """The response to a delegated INSTALL/DELETE: receipt and what it was computed over."""

    receipt: bytes
    counter: int
    card_unique_data: bytes

    def encode(self) -> bytes:
        return lv(self.receipt) + lv(self.counter.to_bytes(2, "big")) + lv(self.card_unique_data)

    @classmethod
    def parse(cls, data: bytes) -> Confirmation | None:
        if data in (b"", b"\x00"):
            return None
        fields = parse_lvs(data)
        if len(fields) < 3 or len(fields[1]) != 2:
            raise WrongData("confirmation data is LV receipt, LV counter, LV card unique data")
        return cls(fields[0], int.from_bytes(fields[1], "big"), fields[2])


# --- GET STATUS -------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusEntry:
    aid: bytes
    life_cycle: int
    privileges: bytes = b"\x00\x00\x00"
    load_file_aid: bytes | None = None
    associated_sd: bytes | None = None
    modules: tuple[bytes, ...] = field(default=())

    def encode_tlv(self) -> bytes:
        body = tlv.encode(0x4F, self.aid) + tlv.encode(0x9F70, bytes((self.life_cycle,)))
        if self.privileges != b"\x00\x00\x00" or self.load_file_aid is not None:
            body += tlv.encode(0xC5, self.privileges)
        if self.load_file_aid is not None:
            body += tlv.encode(0xC4, self.load_file_aid)
        if self.associated_sd is not None:
            body += tlv.encode(0xCC, self.associated_sd)
        for module in self.modules:
            body += tlv.encode(0x84, module)
        return tlv.encode(0xE3, body)

    def encode_legacy(self, with_modules: bool) -> bytes:
        out = lv(self.aid) + bytes((self.life_cycle, self.privileges[0]))
        if with_modules:
            out += bytes((len(self.modules),)) + b"".join(lv(m) for m in self.modules)
        return out

    @classmethod
    def parse_tlv(cls, data: bytes) -> list[StatusEntry]:
        out = []
        for item in tlv.parse_all(data):
            if item.tag != 0xE3:
                raise WrongData(f"GET STATUS: expected E3, got {item.tag:X}")
            children = item.children()
            lf = tlv.find(children, 0xC4)
            sd = tlv.find(children, 0xCC)
            life_cycle = tlv.require(children, 0x9F70, "GET STATUS entry").value
            if len(life_cycle) != 1:
                raise WrongData("GET STATUS: the life cycle (9F70) is one byte")
            out.append(cls(
                aid=tlv.require(children, 0x4F, "GET STATUS entry").value,
                life_cycle=life_cycle[0],
                privileges=(tlv.find(children, 0xC5) or tlv.Tlv(0xC5, b"\0\0\0")).value,
                load_file_aid=lf.value if lf else None,
                associated_sd=sd.value if sd else None,
                modules=tuple(c.value for c in children if c.tag == 0x84),
            ))
        return out


# --- GET DATA templates -----------------------------------------------------------------

GP_OID = bytes.fromhex("2A864886FC6B")  # 1.2.840.114283


def card_recognition_data(scp03_i: int, scp11_variants: int | None) -> bytes:
    """Tag 66: card recognition data (GP CS H.2) naming GP 2.3.1 and the SCPs offered."""
    body = tlv.encode(0x06, GP_OID + b"\x01")
    body += tlv.encode(0x60, tlv.encode(0x06, GP_OID + bytes((0x02, 0x02, 0x03, 0x01))))
    body += tlv.encode(0x63, tlv.encode(0x06, GP_OID + b"\x03"))
    body += tlv.encode(0x64, tlv.encode(0x06, GP_OID + bytes((0x04, 0x03, scp03_i))))
    if scp11_variants is not None:
        body += tlv.encode(0x64, tlv.encode(0x06, GP_OID + bytes((0x04, 0x11, scp11_variants))))
    return tlv.encode(0x66, tlv.encode(0x73, body))
