"""Minimal BER-TLV (ISO 7816-4 / X.690 subset) for the SCP11 data objects and certificates.

Tags are kept as their raw bytes packed into an int (``0x7F21``, ``0x5F49``, ``0x86``), lengths
up to four bytes. Anything that does not parse raises :class:`WrongData` (SW 6A80).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from smarthydra.card.gp.errors import WrongData


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        first = self.tag.to_bytes(_tag_size(self.tag), "big")[0]
        return bool(first & 0x20)

    def children(self) -> list[Tlv]:
        return parse_all(self.value)

    def to_bytes(self) -> bytes:
        return encode(self.tag, self.value)


def _tag_size(tag: int) -> int:
    return max(1, (tag.bit_length() + 7) // 8)


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def encode(tag: int, value: bytes) -> bytes:
    return tag.to_bytes(_tag_size(tag), "big") + encode_length(len(value)) + value


def parse_one(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Parse one TLV at ``offset``; return it and the offset just after it."""
    end = len(data)
    if offset >= end:
        raise WrongData("TLV expected, data ended")
    start = offset
    first = data[offset]
    offset += 1
    if first & 0x1F == 0x1F:
        while True:
            if offset >= end:
                raise WrongData("TLV tag is truncated")
            byte = data[offset]
            offset += 1
            if not byte & 0x80:
                break
            if offset - start > 3:
                raise WrongData("TLV tag longer than 3 bytes")
    tag = int.from_bytes(data[start:offset], "big")
    if offset >= end:
        raise WrongData(f"TLV {tag:X}: length missing")
    first_len = data[offset]
    offset += 1
    if first_len < 0x80:
        length = first_len
    elif first_len == 0x80 or first_len > 0x84:
        raise WrongData(f"TLV {tag:X}: unsupported length encoding {first_len:02X}")
    else:
        count = first_len & 0x7F
        if offset + count > end:
            raise WrongData(f"TLV {tag:X}: length is truncated")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    if offset + length > end:
        raise WrongData(f"TLV {tag:X}: value of {length} bytes runs past the data")
    return Tlv(tag, bytes(data[offset : offset + length])), offset + length


def iterate(data: bytes) -> Iterator[Tlv]:
    offset = 0
    while offset < len(data):
        tlv, offset = parse_one(data, offset)
        yield tlv


def parse_all(data: bytes) -> list[Tlv]:
    return list(iterate(data))


def find(items: list[Tlv], tag: int) -> Tlv | None:
    for item in items:
        if item.tag == tag:
            return item
    return None


def require(items: list[Tlv], tag: int, what: str) -> Tlv:
    item = find(items, tag)
    if item is None:
        raise WrongData(f"{what}: tag {tag:X} missing")
    return item
