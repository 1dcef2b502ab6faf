"""The GBCS envelope: general-ciphering (``DD``) around general-signing (``DF``), sans-I/O.

Wire layout (GBCS §7.2, as in the Reference Test Data Set)::

    general-ciphering (MAC'd messages)
      DD 00 00 00 00 00 00         tag; empty transaction-id, system titles, date-time,
                                   other-information and key-info (GBCS carries them inside)
      <BER length>                 ciphered-content length
      11 00 00 00 00               security header: control byte 0x11, invocation counter
      DF ...                       general-signing part (below)
      <12-byte MAC>                AES-GCM tag over the general-signing part

    general-signing
      DF
      09 <CRA flag> <counter:8>    transaction id; CRA 1 command, 2 response, 3 alert
      08 <originator:8>            originator system title (EUI-64)
      08 <recipient:8>             recipient system title (EUI-64)
      00 | 0C <date-time:12>       optional COSEM date-time (future-dated commands, ...)
      <len> <message code:2> ...   other-information; optional supplementary remote party id,
                                   its counter, a supplementary originator counter or the
                                   remote party's key-agreement certificate
      <BER length> <payload>       content
      [00 | 40 <r||s>]             signature field; absent in RTDS pre-commands

:func:`decode_message` keeps the exact wire bytes of the general-signing part
(:attr:`GeneralSigning.raw`) so MAC and signature checks run over what was received, not over a
re-encoding. :meth:`GbcsMessage.encode` rebuilds the bytes from the fields.

Every malformed input raises a :class:`~smarthydra.gbcs.errors.GbcsDecodeError` subclass.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from smarthydra.gbcs.errors import (
    BadField,
    BadLength,
    GbcsEncodeError,
    SegmentedMessage,
    TrailingBytes,
    Truncated,
    UnexpectedTag,
)

GENERAL_CIPHERING_TAG = 0xDD
GENERAL_SIGNING_TAG = 0xDF
GENERAL_BLOCK_TRANSFER_TAG = 0xE0
# Some documents label GBT-segmented GBCS traffic E6; treat it as segmented too.
SEGMENTED_TAGS = frozenset({GENERAL_BLOCK_TRANSFER_TAG, 0xE6})

SYSTEM_TITLE_SIZE = 8
COUNTER_SIZE = 8
MAC_SIZE = 12
SIGNATURE_SIZE = 64
DATE_TIME_SIZE = 12
SECURITY_CONTROL_MAC = 0x11
SECURITY_HEADER_SIZE = 5
# The five empty fields and the absent key-info of a GBCS general-ciphering APDU.
_CIPHERING_EMPTY_FIELDS = b"\x00" * 6
_MAX_LENGTH_OCTETS = 4


class CraFlag(enum.IntEnum):
    """Command, Response or Alert: the first byte of the transaction id."""

    COMMAND = 1
    RESPONSE = 2
    ALERT = 3


# --- BER lengths ----------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """BER definite length in its shortest form."""
    if length < 0:
        raise GbcsEncodeError(f"a length cannot be negative ({length})")
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(body) > _MAX_LENGTH_OCTETS:
        raise GbcsEncodeError(f"length {length} needs more than {_MAX_LENGTH_OCTETS} octets")
    return bytes([0x80 | len(body)]) + body


def decode_length(data: bytes, offset: int, what: str) -> tuple[int, int]:
    """Read a BER definite length at ``offset``; return ``(length, offset after it)``."""
    if offset >= len(data):
        raise Truncated(f"{what}: input ends at offset {offset} where a length was expected")
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    if count == 0:
        raise BadLength(f"{what}: indefinite BER length (0x80) at offset {offset}")
    if count > _MAX_LENGTH_OCTETS:
        raise BadLength(f"{what}: BER length with {count} octets at offset {offset}")
    end = offset + 1 + count
    if end > len(data):
        raise Truncated(f"{what}: length octets run past the end at offset {offset}")
    return int.from_bytes(data[offset + 1 : end], "big"), end


def _take(data: bytes, offset: int, size: int, what: str) -> tuple[bytes, int]:
    end = offset + size
    if end > len(data):
        raise Truncated(
            f"{what}: needs {size} bytes at offset {offset}, only {len(data) - offset} left"
        )
    return data[offset:end], end


def _expect(data: bytes, offset: int, value: int, what: str) -> int:
    if offset >= len(data):
        raise Truncated(f"{what}: input ends at offset {offset}")
    if data[offset] != value:
        raise UnexpectedTag(
            f"{what}: expected 0x{value:02X} at offset {offset}, found 0x{data[offset]:02X}"
        )
    return offset + 1


def _check_system_title(value: bytes, what: str) -> None:
    if len(value) != SYSTEM_TITLE_SIZE:
        raise GbcsEncodeError(f"{what} must be {SYSTEM_TITLE_SIZE} bytes, got {len(value)}")


def _counter_bytes(counter: int, what: str) -> bytes:
    if not 0 <= counter < 1 << 64:
        raise GbcsEncodeError(f"{what} must fit in 8 bytes, got {counter}")
    return counter.to_bytes(COUNTER_SIZE, "big")


# --- Fields ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionId:
    """CRA flag and the originator counter (the 9 bytes after the ``09`` length)."""

    cra_flag: CraFlag
    originator_counter: int

    def to_bytes(self) -> bytes:
        return bytes([self.cra_flag]) + _counter_bytes(self.originator_counter, "counter")


@dataclass(frozen=True)
class OtherInformation:
    """The other-information field: message code and optional supplementary remote party data.

    Layout by length: 2 (code), 10 (+ supplementary remote party id), 18 (+ its counter),
    26 (+ supplementary originator counter) or more (+ the remote party's key-agreement
    certificate, DER, instead of the supplementary originator counter).
    """

    message_code: int
    supplementary_remote_party_id: bytes | None = None
    supplementary_remote_party_counter: int | None = None
    supplementary_originator_counter: int | None = None
    supplementary_remote_party_ka_certificate: bytes | None = None

    def to_bytes(self) -> bytes:
        if not 0 <= self.message_code <= 0xFFFF:
            raise GbcsEncodeError(f"message code {self.message_code:#x} is not 2 bytes")
        out = self.message_code.to_bytes(2, "big")
        srp_counter = self.supplementary_remote_party_counter
        tail_fields = (
            self.supplementary_originator_counter,
            self.supplementary_remote_party_ka_certificate,
        )
        if self.supplementary_remote_party_id is None:
            if srp_counter is not None or any(f is not None for f in tail_fields):
                raise GbcsEncodeError("supplementary fields need a supplementary remote party id")
            return out
        _check_system_title(self.supplementary_remote_party_id, "supplementary remote party id")
        out += self.supplementary_remote_party_id
        if srp_counter is None:
            if any(f is not None for f in tail_fields):
                raise GbcsEncodeError("this field needs a supplementary remote party counter")
            return out
        out += _counter_bytes(srp_counter, "supplementary remote party counter")
        if all(f is not None for f in tail_fields):
            raise GbcsEncodeError(
                "other-information carries a supplementary originator counter or a "
                "certificate, not both"
            )
        if self.supplementary_originator_counter is not None:
            out += _counter_bytes(
                self.supplementary_originator_counter, "supplementary originator counter"
            )
        elif self.supplementary_remote_party_ka_certificate is not None:
            if len(self.supplementary_remote_party_ka_certificate) <= COUNTER_SIZE:
                # A shorter one would read back as a supplementary originator counter.
                raise GbcsEncodeError("a certificate in other-information is more than 8 bytes")
            out += self.supplementary_remote_party_ka_certificate
        return out

    @classmethod
    def from_bytes(cls, data: bytes) -> OtherInformation:
        size = len(data)
        if size < 2:
            raise BadLength(
                f"other-information is {size} bytes; it needs at least the message code"
            )
        code = int.from_bytes(data[:2], "big")
        if size == 2:
            return cls(code)
        if size == 10:
            return cls(code, data[2:10])
        if size == 18:
            return cls(code, data[2:10], int.from_bytes(data[10:18], "big"))
        if size == 26:
            return cls(
                code,
                data[2:10],
                int.from_bytes(data[10:18], "big"),
                int.from_bytes(data[18:26], "big"),
            )
        if size > 26:
            return cls(
                code,
                data[2:10],
                int.from_bytes(data[10:18], "big"),
                supplementary_remote_party_ka_certificate=data[18:],
            )
        raise BadLength(f"other-information of {size} bytes is not 2, 10, 18, 26 or more")


# --- General-signing ------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneralSigning:
    """The general-signing APDU (``DF ...``).

    ``signature`` is ``None`` when the signature field is absent altogether (as in the RTDS
    pre-commands), ``b""`` when it is present with length 00 (unsigned), else the 64-byte
    ``r || s``. ``raw`` holds the exact bytes decoded (empty for one built in memory, see
    :meth:`wire`).
    """

    transaction_id: TransactionId
    originator: bytes
    recipient: bytes
    date_time: bytes | None
    other_information: OtherInformation
    payload: bytes
    signature: bytes | None = b""
    raw: bytes = field(default=b"", repr=False, compare=False)
    # Offset in ``raw`` where the payload ends (the signed region is raw[1:signed_end]).
    signed_end: int = field(default=0, repr=False, compare=False)

    @property
    def cra_flag(self) -> CraFlag:
        return self.transaction_id.cra_flag

    @property
    def originator_counter(self) -> int:
        return self.transaction_id.originator_counter

    @property
    def message_code(self) -> int:
        return self.other_information.message_code

    @property
    def is_signed(self) -> bool:
        return bool(self.signature)

    def encode(self) -> bytes:
        """The canonical wire form of these fields (minimal BER lengths)."""
        return self._encode_unsigned() + self._signature_field()

    def wire(self) -> bytes:
        """The bytes as received when decoded, else the encoding."""
        return self.raw or self.encode()

    def signed_data(self) -> bytes:
        """What the signature covers: this APDU without ``DF``, through the end of the payload."""
        if self.raw:
            return self.raw[1 : self.signed_end]
        return self._encode_unsigned()[1:]

    def with_signature(self, signature: bytes | None) -> GeneralSigning:
        """A copy carrying ``signature`` (re-encoded; the wire bytes are rebuilt)."""
        built = GeneralSigning(
            self.transaction_id,
            self.originator,
            self.recipient,
            self.date_time,
            self.other_information,
            self.payload,
            signature,
        )
        return decode_general_signing(built.encode())

    def _encode_unsigned(self) -> bytes:
        _check_system_title(self.originator, "originator system title")
        _check_system_title(self.recipient, "recipient system title")
        if self.date_time is None:
            date_time = b"\x00"
        elif len(self.date_time) == DATE_TIME_SIZE:
            date_time = bytes([DATE_TIME_SIZE]) + self.date_time
        else:
            raise GbcsEncodeError(
                f"date-time must be {DATE_TIME_SIZE} bytes, got {len(self.date_time)}"
            )
        other = self.other_information.to_bytes()
        return b"".join(
            [
                bytes([GENERAL_SIGNING_TAG, 9]),
                self.transaction_id.to_bytes(),
                bytes([SYSTEM_TITLE_SIZE]),
                self.originator,
                bytes([SYSTEM_TITLE_SIZE]),
                self.recipient,
                date_time,
                encode_length(len(other)),
                other,
                encode_length(len(self.payload)),
                self.payload,
            ]
        )

    def _signature_field(self) -> bytes:
        if self.signature is None:
            return b""
        if len(self.signature) not in (0, SIGNATURE_SIZE):
            raise GbcsEncodeError(
                f"a signature is 0 or {SIGNATURE_SIZE} bytes, got {len(self.signature)}"
            )
        return encode_length(len(self.signature)) + self.signature


def _decode_general_signing_at(data: bytes, offset: int, end: int) -> GeneralSigning:
    """Decode the general-signing APDU occupying exactly ``data[offset:end]``."""
    region = data[offset:end]
    pos = _expect(region, 0, GENERAL_SIGNING_TAG, "general-signing tag")
    pos = _expect(region, pos, 9, "transaction-id length")
    cra_raw, pos = _take(region, pos, 1, "CRA flag")
    try:
        cra = CraFlag(cra_raw[0])
    except ValueError:
        raise BadField(
            f"CRA flag {cra_raw[0]} is not 1 (command), 2 (response) or 3 (alert)"
        ) from None
    counter, pos = _take(region, pos, COUNTER_SIZE, "originator counter")
    pos = _expect(region, pos, SYSTEM_TITLE_SIZE, "originator system title length")
    originator, pos = _take(region, pos, SYSTEM_TITLE_SIZE, "originator system title")
    pos = _expect(region, pos, SYSTEM_TITLE_SIZE, "recipient system title length")
    recipient, pos = _take(region, pos, SYSTEM_TITLE_SIZE, "recipient system title")
    dt_len, pos = decode_length(region, pos, "date-time")
    if dt_len == 0:
        date_time = None
    elif dt_len == DATE_TIME_SIZE:
        date_time, pos = _take(region, pos, DATE_TIME_SIZE, "date-time")
    else:
        raise BadLength(f"date-time length is {dt_len}; it must be 0 or {DATE_TIME_SIZE}")
    other_len, pos = decode_length(region, pos, "other-information")
    other_raw, pos = _take(region, pos, other_len, "other-information")
    other = OtherInformation.from_bytes(other_raw)
    content_len, pos = decode_length(region, pos, "content")
    payload, pos = _take(region, pos, content_len, "content")
    signed_end = pos
    signature: bytes | None
    if pos == len(region):
        signature = None
    else:
        sig_len, pos = decode_length(region, pos, "signature")
        if sig_len not in (0, SIGNATURE_SIZE):
            raise BadLength(f"signature length is {sig_len}; it must be 0 or {SIGNATURE_SIZE}")
        signature, pos = _take(region, pos, sig_len, "signature")
        if pos != len(region):
            raise TrailingBytes(
                f"{len(region) - pos} bytes follow the signature of the general-signing APDU"
            )
    return GeneralSigning(
        TransactionId(cra, int.from_bytes(counter, "big")),
        originator,
        recipient,
        date_time,
        other,
        payload,
        signature,
        raw=region,
        signed_end=signed_end,
    )


def decode_general_signing(data: bytes) -> GeneralSigning:
    """Decode a standalone general-signing APDU (``DF ...``), e.g. a pre-command."""
    data = bytes(data)
    return _decode_general_signing_at(data, 0, len(data))


# --- The whole message ----------------------------------------------------------------------


@dataclass(frozen=True)
class GbcsMessage:
    """A GBCS message: a general-signing part, MAC'd inside general-ciphering or not.

    ``mac`` is ``None`` for a bare general-signing message (pre-commands and the alerts and
    responses that are only signed). ``raw`` holds the exact decoded bytes.
    """

    general_signing: GeneralSigning
    mac: bytes | None = None
    security_control: int = SECURITY_CONTROL_MAC
    invocation_counter: bytes = b"\x00\x00\x00\x00"
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def is_macd(self) -> bool:
        return self.mac is not None

    @property
    def cra_flag(self) -> CraFlag:
        return self.general_signing.cra_flag

    @property
    def originator(self) -> bytes:
        return self.general_signing.originator

    @property
    def recipient(self) -> bytes:
        return self.general_signing.recipient

    @property
    def originator_counter(self) -> int:
        return self.general_signing.originator_counter

    @property
    def message_code(self) -> int:
        return self.general_signing.message_code

    @property
    def payload(self) -> bytes:
        return self.general_signing.payload

    @property
    def date_time(self) -> bytes | None:
        return self.general_signing.date_time

    @property
    def other_information(self) -> OtherInformation:
        return self.general_signing.other_information

    def security_header(self) -> bytes:
        if len(self.invocation_counter) != 4:
            raise GbcsEncodeError("the invocation counter is 4 bytes")
        return bytes([self.security_control]) + self.invocation_counter

    def encode(self) -> bytes:
        """Canonical wire bytes rebuilt from the fields."""
        inner = self.general_signing.encode()
        if self.mac is None:
            return inner
        return self._wrap(inner)

    def wire(self) -> bytes:
        """The bytes as received when decoded, else the encoding."""
        if self.raw:
            return self.raw
        if self.mac is None:
            return self.general_signing.wire()
        return self._wrap(self.general_signing.wire())

    def _wrap(self, inner: bytes) -> bytes:
        assert self.mac is not None
        if len(self.mac) != MAC_SIZE:
            raise GbcsEncodeError(f"a GBCS MAC is {MAC_SIZE} bytes, got {len(self.mac)}")
        ciphered = self.security_header() + inner + self.mac
        return (
            bytes([GENERAL_CIPHERING_TAG])
            + _CIPHERING_EMPTY_FIELDS
            + encode_length(len(ciphered))
            + ciphered
        )


def _ciphering_bounds(data: bytes) -> tuple[int, int, int]:
    """Check the general-ciphering frame; return (security header offset, DF offset, MAC offset)."""
    pos = _expect(data, 0, GENERAL_CIPHERING_TAG, "general-ciphering tag")
    fields, pos = _take(data, pos, len(_CIPHERING_EMPTY_FIELDS), "general-ciphering header")
    if fields != _CIPHERING_EMPTY_FIELDS:
        raise BadField(
            "general-ciphering transaction-id, system titles, date-time, other-information "
            f"and key-info must be empty in GBCS, got {fields.hex()}"
        )
    length, pos = decode_length(data, pos, "ciphered-content")
    if pos + length > len(data):
        raise Truncated(
            f"ciphered-content announces {length} bytes, only {len(data) - pos} present"
        )
    if pos + length < len(data):
        raise TrailingBytes(f"{len(data) - pos - length} bytes follow the general-ciphering APDU")
    if length < SECURITY_HEADER_SIZE + MAC_SIZE + 1:
        raise BadLength(f"ciphered-content of {length} bytes cannot hold header, APDU and MAC")
    return pos, pos + SECURITY_HEADER_SIZE, pos + length - MAC_SIZE


def decode_message(data: bytes) -> GbcsMessage:
    """Decode a whole GBCS message (``DD ...`` or ``DF ...``)."""
    data = bytes(data)
    if not data:
        raise Truncated("empty input: no GBCS message")
    tag = data[0]
    if tag in SEGMENTED_TAGS:
        raise SegmentedMessage(
            f"tag 0x{tag:02X} is a general-block-transfer segment; reassemble the blocks "
            "(decode_gbt_block) before decoding the message"
        )
    if tag == GENERAL_SIGNING_TAG:
        return GbcsMessage(decode_general_signing(data), raw=data)
    if tag != GENERAL_CIPHERING_TAG:
        raise UnexpectedTag(f"a GBCS message starts with 0xDD or 0xDF, found 0x{tag:02X}")
    header, start, mac_at = _ciphering_bounds(data)
    gs = _decode_general_signing_at(data, start, mac_at)
    return GbcsMessage(
        gs,
        mac=data[mac_at:],
        security_control=data[header],
        invocation_counter=data[header + 1 : start],
        raw=data,
    )


# --- General block transfer (segmented messages) --------------------------------------------


@dataclass(frozen=True)
class GbtBlock:
    """One general-block-transfer APDU: ``E0 <control> <block:2> <ack:2> <BER len> <data>``."""

    last_block: bool
    streaming: bool
    window: int
    block_number: int
    block_number_ack: int
    data: bytes

    def encode(self) -> bytes:
        if not 0 <= self.window < 64:
            raise GbcsEncodeError("GBT window is 6 bits")
        control = (0x80 if self.last_block else 0) | (0x40 if self.streaming else 0) | self.window
        return (
            bytes([GENERAL_BLOCK_TRANSFER_TAG, control])
            + self.block_number.to_bytes(2, "big")
            + self.block_number_ack.to_bytes(2, "big")
            + encode_length(len(self.data))
            + self.data
        )


def _decode_gbt_at(data: bytes, offset: int) -> tuple[GbtBlock, int]:
    pos = _expect(data, offset, GENERAL_BLOCK_TRANSFER_TAG, "general-block-transfer tag")
    control, pos = _take(data, pos, 1, "block-control")
    number, pos = _take(data, pos, 2, "block-number")
    ack, pos = _take(data, pos, 2, "block-number-ack")
    length, pos = decode_length(data, pos, "block-data")
    body, pos = _take(data, pos, length, "block-data")
    c = control[0]
    block = GbtBlock(
        bool(c & 0x80),
        bool(c & 0x40),
        c & 0x3F,
        int.from_bytes(number, "big"),
        int.from_bytes(ack, "big"),
        body,
    )
    return block, pos


def decode_gbt_block(data: bytes) -> GbtBlock:
    """Decode exactly one general-block-transfer APDU."""
    data = bytes(data)
    block, pos = _decode_gbt_at(data, 0)
    if pos != len(data):
        raise TrailingBytes(f"{len(data) - pos} bytes follow the GBT block")
    return block


def decode_gbt_stream(data: bytes) -> list[GbtBlock]:
    """Decode GBT APDUs that follow one another (a segmented message as captured)."""
    data = bytes(data)
    if not data:
        raise Truncated("empty input: no GBT block")
    blocks: list[GbtBlock] = []
    pos = 0
    while pos < len(data):
        block, pos = _decode_gbt_at(data, pos)
        blocks.append(block)
    return blocks


def segment_message(data: bytes, block_size: int, *, window: int = 1) -> list[GbtBlock]:
    """Split a message into GBT blocks of at most ``block_size`` data bytes, numbered from 1,
    the last flagged (the inverse of :func:`reassemble_gbt`)."""
    if block_size < 1:
        raise GbcsEncodeError("a GBT block carries at least one byte")
    chunks = [data[i : i + block_size] for i in range(0, len(data), block_size)] or [b""]
    if len(chunks) > 0xFFFF:
        raise GbcsEncodeError(f"{len(chunks)} GBT blocks: block numbers are 2 bytes")
    return [
        GbtBlock(number == len(chunks), False, window, number, 0, chunk)
        for number, chunk in enumerate(chunks, start=1)
    ]


def decode_segmented(data: bytes) -> GbcsMessage:
    """Reassemble a stream of GBT blocks and decode the GBCS message they carry."""
    return decode_message(reassemble_gbt(decode_gbt_stream(data)))


def reassemble_gbt(blocks: list[GbtBlock]) -> bytes:
    """Join GBT blocks (numbered from 1, the last flagged) into the message bytes."""
    if not blocks:
        raise SegmentedMessage("no GBT blocks to reassemble")
    ordered = sorted(blocks, key=lambda b: b.block_number)
    for expected, block in enumerate(ordered, start=1):
        if block.block_number != expected:
            raise SegmentedMessage(f"GBT block {expected} is missing (got {block.block_number})")
    if not ordered[-1].last_block or any(b.last_block for b in ordered[:-1]):
        raise SegmentedMessage("only the final GBT block may carry the last-block flag")
    return b"".join(b.data for b in ordered)


# --- The MAC header: what a device needs before parsing anything else ----------------------


@dataclass(frozen=True)
class MacHeader:
    """The fields needed to derive the MAC key and check the MAC, from fixed offsets only."""

    originator: bytes
    recipient: bytes
    cra_flag: CraFlag
    originator_counter: int
    security_control: int
    invocation_counter: bytes
    authenticated: bytes  # the general-signing part, exactly as received
    mac: bytes


# Offsets inside the general-signing part: DF 09 CRA counter(8) 08 orig(8) 08 recip(8)
_GS_FIXED = 2 + 1 + COUNTER_SIZE + 1 + SYSTEM_TITLE_SIZE + 1 + SYSTEM_TITLE_SIZE


def parse_mac_header(data: bytes) -> MacHeader:
    """Cheaply frame a MAC'd message: check the envelope, read the 29 fixed bytes, no more."""
    data = bytes(data)
    if data and data[0] in SEGMENTED_TAGS:
        raise SegmentedMessage("a GBT segment carries no MAC header; reassemble first")
    header, start, mac_at = _ciphering_bounds(data)
    if mac_at - start < _GS_FIXED:
        raise Truncated("general-signing part too short for the transaction id and system titles")
    gs = data[start:mac_at]
    if gs[0] != GENERAL_SIGNING_TAG or gs[1] != 9:
        raise UnexpectedTag(f"general-signing part starts {gs[:2].hex()}, expected df09")
    if gs[11] != SYSTEM_TITLE_SIZE or gs[20] != SYSTEM_TITLE_SIZE:
        raise BadLength("system title lengths in the general-signing part must be 8")
    try:
        cra = CraFlag(gs[2])
    except ValueError:
        raise BadField(f"CRA flag {gs[2]} is not 1, 2 or 3") from None
    return MacHeader(
        originator=gs[12:20],
        recipient=gs[21:29],
        cra_flag=cra,
        originator_counter=int.from_bytes(gs[3:11], "big"),
        security_control=data[header],
        invocation_counter=data[header + 1 : start],
        authenticated=gs,
        mac=data[mac_at:],
    )
