"""ASN.1 DER for the GBCS security use cases (CS01a, CS02 family, CS03/CS04, CS06/CS11, ...).

:func:`decode_der` parses a payload into a typed tree of :class:`DerNode` (class, constructed
bit, tag number, and either children or primitive content) and checks the rules GBCS relies on:
definite lengths and single-byte tags below 31. Every tree re-encodes to the bytes it came from (:meth:`DerNode.encode`). Long-form lengths keep their octet count:
GBCS devices send fixed-size lengths (``30 82 00 83``), which BER allows and DER does not.

On top of the tree, named views for the structures identified from the RTDS data:

- :func:`trust_anchor_cells`: the GBCS trust-anchor cells in a CS02 response or alert,
  ``SEQUENCE { SEQUENCE { role INTEGER, keyUsage BIT STRING }, status ENUMERATED,
  OCTET STRING(8) x4 }`` (subject EUI, subject key identifier, issuer EUI, authority key
  identifier);
- :func:`embedded_certificates`: the X.509 certificates carried in a CS02 command (the new
  trust anchor and its path), as DER bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from smarthydra.gbcs.catalogue import RemotePartyRole
from smarthydra.gbcs.errors import BadField, BadLength, GbcsEncodeError, TrailingBytes, Truncated

_MAX_DEPTH = 32
_MAX_LENGTH_OCTETS = 4


class TagClass(enum.IntEnum):
    UNIVERSAL = 0
    APPLICATION = 1
    CONTEXT = 2
    PRIVATE = 3


_TAG_CLASSES = tuple(TagClass)  # indexed by the top two bits; faster than TagClass(value)


class Universal(enum.IntEnum):
    BOOLEAN = 1
    INTEGER = 2
    BIT_STRING = 3
    OCTET_STRING = 4
    NULL = 5
    OID = 6
    ENUMERATED = 10
    UTF8_STRING = 12
    SEQUENCE = 16
    SET = 17
    PRINTABLE_STRING = 19
    IA5_STRING = 22
    UTC_TIME = 23
    GENERALIZED_TIME = 24


@dataclass(frozen=True)
class DerNode:
    """One TLV. ``children`` for a constructed node, ``content`` for a primitive one."""

    tag_class: TagClass
    constructed: bool
    tag_number: int
    content: bytes = b""
    children: tuple[DerNode, ...] = ()
    # Octets of a long-form length as sent (0: shortest form). GBCS devices send fixed-size
    # lengths such as ``82 00 83`` (valid BER, not DER); keeping the form keeps the bytes.
    length_octets: int = 0

    @property
    def identifier(self) -> int:
        return (self.tag_class << 6) | (0x20 if self.constructed else 0) | self.tag_number

    @property
    def name(self) -> str:
        if self.tag_class is TagClass.UNIVERSAL:
            try:
                return Universal(self.tag_number).name
            except ValueError:
                return f"UNIVERSAL {self.tag_number}"
        return f"[{self.tag_class.name} {self.tag_number}]"

    def is_universal(self, kind: Universal) -> bool:
        return self.tag_class is TagClass.UNIVERSAL and self.tag_number == kind

    def as_int(self) -> int:
        """The content as a two's-complement INTEGER / ENUMERATED."""
        if self.constructed or not self.content:
            raise BadField(f"{self.name} is not a primitive integer")
        return int.from_bytes(self.content, "big", signed=True)

    def body(self) -> bytes:
        if self.constructed:
            return b"".join(child.encode() for child in self.children)
        return self.content

    def encode(self) -> bytes:
        if not 0 <= self.tag_number < 31:
            raise GbcsEncodeError(f"tag number {self.tag_number} needs the high-tag form")
        if self.constructed and self.content:
            raise GbcsEncodeError("a constructed node has children, not content")
        if not self.constructed and self.children:
            raise GbcsEncodeError("a primitive node has content, not children")
        body = self.body()
        return bytes([self.identifier]) + _encode_length(len(body), self.length_octets) + body

    def walk(self) -> list[DerNode]:
        """This node and every node below it, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def der_primitive(kind: Universal, content: bytes) -> DerNode:
    """A universal primitive node (INTEGER, OCTET STRING, GeneralizedTime, ...)."""
    return DerNode(TagClass.UNIVERSAL, False, int(kind), content)


def der_integer(value: int) -> DerNode:
    """A universal INTEGER in the fewest two's-complement octets."""
    size = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit
    return der_primitive(Universal.INTEGER, value.to_bytes(size, "big", signed=True))


def der_sequence(*children: DerNode) -> DerNode:
    """A universal SEQUENCE of ``children``."""
    return DerNode(TagClass.UNIVERSAL, True, int(Universal.SEQUENCE), children=children)


def _encode_length(length: int, octets: int = 0) -> bytes:
    minimal = (length.bit_length() + 7) // 8
    if octets == 0:
        if length < 0x80:
            return bytes([length])
        octets = minimal
    if octets > _MAX_LENGTH_OCTETS or octets < minimal:
        raise GbcsEncodeError(f"length {length} does not fit a {octets}-octet long form")
    return bytes([0x80 | octets]) + length.to_bytes(octets, "big")


def _decode_node(data: bytes, pos: int, limit: int, depth: int) -> tuple[DerNode, int]:
    if depth > _MAX_DEPTH:
        raise BadField(f"DER nesting deeper than {_MAX_DEPTH} at offset {pos}")
    if pos >= limit:
        raise Truncated(f"DER: input ends at offset {pos} where a tag was expected")
    ident = data[pos]
    if ident & 0x1F == 0x1F:
        raise BadField(f"DER high-tag-number form at offset {pos} is not used in GBCS")
    start = pos
    pos += 1
    if pos >= limit:
        raise Truncated(f"DER: input ends at offset {pos} where a length was expected")
    first = data[pos]
    pos += 1
    length_octets = 0
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise BadLength(f"DER forbids the indefinite length (offset {pos - 1})")
        if count > _MAX_LENGTH_OCTETS:
            raise BadLength(f"DER length of {count} octets at offset {pos - 1}")
        raw = data[pos : min(pos + count, limit)]
        if len(raw) < count:
            raise Truncated(f"DER length octets run past the end at offset {pos}")
        pos += count
        length = int.from_bytes(raw, "big")
        if length < 0x80 and count == 1:
            # ``81 xx`` with xx < 0x80 has no fixed-size excuse; nothing in GBCS sends it.
            raise BadLength(f"length at offset {start + 1} uses 81 for a short length")
        length_octets = count
    end = pos + length
    if end > limit:
        raise Truncated(
            f"DER {ident:#04x} at offset {start} announces {length} bytes, {limit - pos} remain"
        )
    tag_class = _TAG_CLASSES[ident >> 6]
    constructed = bool(ident & 0x20)
    number = ident & 0x1F
    if not constructed:
        return DerNode(tag_class, False, number, data[pos:end], length_octets=length_octets), end
    children: list[DerNode] = []
    while pos < end:
        child, pos = _decode_node(data, pos, end, depth + 1)
        children.append(child)
    node = DerNode(tag_class, True, number, children=tuple(children), length_octets=length_octets)
    return node, end


def decode_der(data: bytes) -> DerNode:
    """Decode exactly one DER TLV covering all of ``data``."""
    data = bytes(data)
    node, end = _decode_node(data, 0, len(data), 0)
    if end != len(data):
        raise TrailingBytes(f"{len(data) - end} bytes follow the DER value")
    return node


def is_der(payload: bytes) -> bool:
    """GBCS security payloads start with a universal SEQUENCE, INTEGER, OCTET STRING or NULL."""
    return bool(payload) and payload[0] in (0x30, 0x02, 0x04, 0x05)


# --- Named views ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustAnchorCell:
    """One trust-anchor cell of a device, as reported by a CS02 response or alert."""

    role: int
    key_usage: bytes  # the BIT STRING content (unused-bits byte first)
    status: int
    subject_unique_id: bytes
    subject_key_identifier: bytes
    issuer_unique_id: bytes
    authority_key_identifier: bytes

    @property
    def role_name(self) -> str:
        try:
            return RemotePartyRole(self.role).name.lower()
        except ValueError:
            return f"role-{self.role}"

    @property
    def is_key_agreement(self) -> bool:
        # keyUsage bit 4 (keyAgreement) = 0x08 in the first content byte; bit 0 is 0x80.
        return len(self.key_usage) > 1 and bool(self.key_usage[1] & 0x08)


def _as_cell(node: DerNode) -> TrustAnchorCell | None:
    kids = node.children
    if not node.is_universal(Universal.SEQUENCE) or len(kids) != 6:
        return None
    head, status, subject, key_id, issuer, authority = kids
    if not (
        head.is_universal(Universal.SEQUENCE)
        and len(head.children) == 2
        and head.children[0].is_universal(Universal.INTEGER)
        and head.children[1].is_universal(Universal.BIT_STRING)
        and status.is_universal(Universal.ENUMERATED)
        and all(
            k.is_universal(Universal.OCTET_STRING) and len(k.content) == 8
            for k in (subject, key_id, issuer, authority)
        )
    ):
        return None
    return TrustAnchorCell(
        head.children[0].as_int(),
        head.children[1].content,
        status.as_int(),
        subject.content,
        key_id.content,
        issuer.content,
        authority.content,
    )


def trust_anchor_cells(tree: DerNode) -> list[TrustAnchorCell]:
    """Every trust-anchor cell in ``tree``, in document order."""
    return [cell for node in tree.walk() if (cell := _as_cell(node)) is not None]


def _looks_like_certificate(node: DerNode) -> bool:
    kids = node.children
    return (
        node.is_universal(Universal.SEQUENCE)
        and len(kids) == 3
        and kids[0].is_universal(Universal.SEQUENCE)
        and kids[1].is_universal(Universal.SEQUENCE)
        and kids[2].is_universal(Universal.BIT_STRING)
        and bool(kids[0].children)
        and kids[0].children[0].tag_class is TagClass.CONTEXT
    )


def embedded_certificates(tree: DerNode) -> list[bytes]:
    """The DER of every X.509 certificate (TBS, algorithm, signature) carried in ``tree``."""
    return [node.encode() for node in tree.walk() if _looks_like_certificate(node)]


def der_to_json(node: DerNode) -> dict[str, object]:
    """A JSON-friendly view of the tree (what ``gbcs parse`` prints)."""
    out: dict[str, object] = {"tag": node.name}
    if node.constructed:
        out["children"] = [der_to_json(child) for child in node.children]
    elif node.is_universal(Universal.INTEGER) or node.is_universal(Universal.ENUMERATED):
        out["value"] = node.as_int() if node.content else None
    else:
        out["hex"] = node.content.hex()
    return out
