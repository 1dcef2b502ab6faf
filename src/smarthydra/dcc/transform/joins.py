"""8.7 joins and 8.12.2 GPF device log restore: DER payloads carrying inventory facts.

A DUIS join names only the other device (OtherDeviceID); the command also carries that
device's GBCS device type and, for a method C join (gas meter and PPMID), its key-agreement
certificate, all from the DCC's inventory::

    JoinDeviceCommand ::= SEQUENCE { joinMethodAndRole INTEGER { methodAInitiator (0),
        methodAResponder (1), methodB (2), methodC (3) }, otherDeviceEntityIdentifier
        OCTET STRING (SIZE (8)), otherDeviceType DeviceType, otherDeviceKeyAgreementCertificate
        Certificate OPTIONAL }

A GPF device log restore names only the old gas proxy (OldGPFID); the command carries the
entries of its device log as the inventory records them::

    GPFDeviceLogRestoreCommand ::= SEQUENCE { deviceLogEntries SEQUENCE OF SEQUENCE {
        deviceEntityIdentifier OCTET STRING (SIZE (8)), deviceType DeviceType } }
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from smarthydra.dcc.transform.device import (
    GBCS_DEVICE_TYPE_CODES,
    DeviceType,
    Inventory,
    InventoryDevice,
)
from smarthydra.dcc.transform.spec import Body, InventoryCodec, TransformError
from smarthydra.duis.codes import ResponseCode
from smarthydra.eui import Eui64, InvalidEui64
from smarthydra.gbcs.der import (
    DerNode,
    Universal,
    decode_der,
    der_integer,
    der_primitive,
    der_sequence,
)
from smarthydra.gbcs.errors import GbcsError

OTHER_DEVICE = "OtherDeviceID"
OLD_GPF = "OldGPFID"
DEVICE_TYPE_BY_CODE = {code: kind for kind, code in GBCS_DEVICE_TYPE_CODES.items()}


class JoinMethod(enum.IntEnum):
    A_INITIATOR = 0  # CS03A1: the ESME joins a PPMID or HCALCS
    A_RESPONDER = 1  # CS03A2: the PPMID or HCALCS joins the ESME
    B = 2  # CS03B: the gas meter joins the gas proxy
    C = 3  # CS03C: the gas meter and a PPMID join each other (certificate exchanged)


def _eui(body: Body, name: str) -> Eui64:
    text = body.get(name)
    if not isinstance(text, str):
        raise TransformError(f"{name} is missing")
    try:
        return Eui64.parse(text)
    except InvalidEui64 as exc:
        raise TransformError(f"{name}: {exc}") from None


def _known(inventory: Inventory, eui: Eui64, what: str) -> InventoryDevice:
    device = inventory.device(eui.value)
    if device is None:
        raise TransformError(
            f"{what} {eui.hyphenated} is not in the inventory", ResponseCode.UNKNOWN_DEVICE
        )
    return device


def _decode(payload: bytes, what: str) -> DerNode:
    try:
        return decode_der(payload)
    except GbcsError as exc:
        raise TransformError(f"{what} payload: {exc}") from None


@dataclass(frozen=True)
class JoinDevice(InventoryCodec):
    """CS03A1/A2/B/C: join the target to the other device, which must be of one of the
    ``partners`` types; method C also sends the other device's certificate."""

    method: JoinMethod
    partners: frozenset[DeviceType]

    def build_from(self, body: Body, inventory: Inventory) -> bytes:
        eui = _eui(body, OTHER_DEVICE)
        other = _known(inventory, eui, OTHER_DEVICE)
        if other.device_type not in self.partners:
            names = sorted(p.value for p in self.partners)
            raise TransformError(
                f"{OTHER_DEVICE} {eui.hyphenated} is a {other.device_type.value}; a method "
                f"{self.method.name} join here is with a {' or '.join(names)}"
            )
        items = [
            der_integer(int(self.method)),
            der_primitive(Universal.OCTET_STRING, eui.value),
            der_integer(GBCS_DEVICE_TYPE_CODES[other.device_type]),
        ]
        if self.method is JoinMethod.C:
            certificate = other.key_agreement_certificate
            if certificate is None:
                raise TransformError(
                    f"the inventory holds no key-agreement certificate for {eui.hyphenated}"
                )
            try:
                items.append(decode_der(certificate))
            except GbcsError as exc:
                raise TransformError(f"{eui.hyphenated}'s certificate: {exc}") from None
        return der_sequence(*items).encode()

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        tree = _decode(payload, "join")
        items = tree.children
        if len(items) not in (3, 4) or items[0].as_int() != int(self.method):
            raise TransformError(f"not a method {self.method.name} join command")
        return {OTHER_DEVICE: Eui64(items[1].content).hyphenated}, None


def join_details(payload: bytes) -> tuple[int, bytes, int, bytes | None]:
    """(method, other device EUI, its device type code, its certificate) of a CS03 payload."""
    items = _decode(payload, "join").children
    if len(items) not in (3, 4):
        raise TransformError("not a join command")
    certificate = items[3].encode() if len(items) == 4 else None
    return items[0].as_int(), items[1].content, items[2].as_int(), certificate


@dataclass(frozen=True)
class GpfDeviceLogRestore(InventoryCodec):
    """GCS59: the new gas proxy gets the old one's device log entries from the inventory."""

    def build_from(self, body: Body, inventory: Inventory) -> bytes:
        old = _eui(body, OLD_GPF)
        entries = inventory.device_log(old.value)
        if entries is None:
            raise TransformError(
                f"{OLD_GPF} {old.hyphenated} has no device log in the inventory",
                ResponseCode.UNKNOWN_DEVICE,
            )
        out = []
        for eui in entries:
            device = _known(inventory, Eui64(eui), f"{old.hyphenated}'s device log entry")
            out.append(
                der_sequence(
                    der_primitive(Universal.OCTET_STRING, eui),
                    der_integer(GBCS_DEVICE_TYPE_CODES[device.device_type]),
                )
            )
        return der_sequence(der_sequence(*out)).encode()

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        raise TransformError("a device log restore names the old GPF, which it does not carry")


def restored_entries(payload: bytes) -> list[tuple[bytes, int]]:
    """(EUI, device type code) of each entry of a GCS59 payload."""
    tree = _decode(payload, "GCS59")
    if len(tree.children) != 1:
        raise TransformError("GCS59 payload is not (device log entries)")
    return [(e.children[0].content, e.children[1].as_int()) for e in tree.children[0].children]
