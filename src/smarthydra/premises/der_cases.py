"""The DER-coded GBCS use cases a meter serves: join / unjoin and firmware activation.

- CS03A1 / CS03B (join): ``SEQUENCE { INTEGER method, OCTET STRING other device, INTEGER
  device type }``; the meter records the device it may now talk to over the HAN (a PPMID, an
  IHD, the gas meter...). Answer ``INTEGER 0`` on success.
- CS04AC / CS04B (unjoin): ``OCTET STRING other device``; the meter forgets it.
- CS06 (activate firmware): ``SEQUENCE { OCTET STRING image hash, INTEGER activation }``;
  the meter switches to the image with that hash if the hub has distributed it (CS05).
  Answer ``SEQUENCE { INTEGER result, OCTET STRING firmware version }``.
- CS08 (read firmware version) is the PPMID's (:mod:`.ppmid`), with the same helpers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from smarthydra.gbcs.der import DerNode, TagClass, Universal, decode_der
from smarthydra.gbcs.errors import GbcsDecodeError

JOIN_CASES = frozenset({"CS03A1", "CS03B"})
METER_CASES = frozenset({*JOIN_CASES, "CS04AC", "CS04B", "CS06"})
RESULT_SUCCESS = 0
RESULT_FAILURE = 1
RESULT_NOT_FOUND = 2


def der_integer(value: int) -> DerNode:
    length = max(1, (value.bit_length() + 8) // 8)
    return DerNode(TagClass.UNIVERSAL, False, Universal.INTEGER,
                   value.to_bytes(length, "big", signed=True))


def der_octets(value: bytes) -> DerNode:
    return DerNode(TagClass.UNIVERSAL, False, Universal.OCTET_STRING, value)


def der_time(moment: dt.datetime) -> DerNode:
    return DerNode(TagClass.UNIVERSAL, False, Universal.GENERALIZED_TIME,
                   moment.strftime("%Y%m%d%H%M%SZ").encode())


def der_sequence(*children: DerNode) -> DerNode:
    return DerNode(TagClass.UNIVERSAL, True, Universal.SEQUENCE, children=children)


def parse_time(node: DerNode) -> dt.datetime:
    if not node.is_universal(Universal.GENERALIZED_TIME):
        raise GbcsDecodeError(f"expected a GeneralizedTime, got {node.name}")
    try:
        return dt.datetime.strptime(node.content.decode("ascii"), "%Y%m%d%H%M%SZ").replace(
            tzinfo=dt.UTC)
    except (UnicodeDecodeError, ValueError):
        raise GbcsDecodeError("malformed GeneralizedTime") from None


@dataclass(frozen=True)
class FirmwareImage:
    version: bytes
    image: bytes

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.image).digest()


@dataclass
class DeviceFirmware:
    """A device's running firmware and the images the hub has distributed to it (CS05)."""

    version: bytes = bytes.fromhex("0123abcd")
    received: dict[bytes, FirmwareImage] = field(default_factory=dict)
    activations: int = 0

    def receive(self, image: FirmwareImage) -> None:
        self.received[image.hash] = image

    def activate(self, image_hash: bytes) -> int:
        image = self.received.get(image_hash)
        if image is None:
            return RESULT_NOT_FOUND
        self.version = image.version
        self.activations += 1
        return RESULT_SUCCESS


@dataclass
class JoinedDevices:
    """The devices a meter has been told it may talk to (CS03) and not told to forget (CS04)."""

    devices: dict[bytes, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DerAnswer:
    payload: bytes
    executed: bool


def serve_meter(name: str, payload: bytes, joined: JoinedDevices,
                firmware: DeviceFirmware) -> DerAnswer:
    """Serve a join, unjoin or firmware activation; a malformed command gets a failure."""
    try:
        tree = decode_der(payload)
        if name in JOIN_CASES:
            method, other, kind = tree.children
            device = other.content
            if len(device) != 8 or not other.is_universal(Universal.OCTET_STRING):
                raise GbcsDecodeError("the other device is an EUI-64")
            method.as_int()
            joined.devices[device] = kind.as_int()
            return DerAnswer(der_integer(RESULT_SUCCESS).encode(), True)
        if name in ("CS04AC", "CS04B"):
            if not tree.is_universal(Universal.OCTET_STRING) or len(tree.content) != 8:
                raise GbcsDecodeError("unjoin names one EUI-64")
            found = joined.devices.pop(tree.content, None) is not None
            result = RESULT_SUCCESS if found else RESULT_NOT_FOUND
            return DerAnswer(der_integer(result).encode(), found)
        if name == "CS06":
            image_hash, _activation = tree.children
            result = firmware.activate(image_hash.content)
            answer = der_sequence(der_integer(result), der_octets(firmware.version))
            return DerAnswer(answer.encode(), result == RESULT_SUCCESS)
    except (GbcsDecodeError, ValueError):
        return DerAnswer(der_integer(RESULT_FAILURE).encode(), False)
    return DerAnswer(der_integer(RESULT_FAILURE).encode(), False)  # a use case not served here
