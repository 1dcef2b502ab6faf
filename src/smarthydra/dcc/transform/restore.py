"""8.12.1 Restore HAN Device Log (CCS03): a replacement comms hub gets the old hub's HAN.

A DUIS request names only the old hub (OldCHFID). The command carries what the DCC kept of
that hub's HAN: the extended PAN id and each device log entry's EUI-64 and key, which the
hub reports in its device log backup alert (CS14, 0x8F12) whenever its device log changes.
The command invokes the ZigBee network control object's restore_PAN method::

    ACTION 104 / 0-0:30.3.0.255 method 5 with
    restore_PAN ::= structure { extended_PAN_ID octet-string(8),
                                device_log array of structure { id octet-string(8),
                                                                key octet-string(16) } }
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from smarthydra.dcc.transform.device import HanBackup, Inventory
from smarthydra.dcc.transform.spec import Body, InventoryCodec, TransformError
from smarthydra.duis.codes import ResponseCode
from smarthydra.eui import Eui64, InvalidEui64
from smarthydra.gbcs.axdr import Data, DataType, array, octet_string, structure
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    CosemDescriptor,
    DataNotification,
    RequestKind,
    RequestSpecification,
    decode_xdlms,
)

OLD_CHF = "OldCHFID"
ZIGBEE_NETWORK_CONTROL_CLASS = 104
ZIGBEE_NETWORK_CONTROL = bytes.fromhex("00001E0300FF")  # 0-0:30.3.0.255
RESTORE_PAN_METHOD = 5
# GBCS sets the invoke-id's top byte to 0x20 (the "service class: confirmed" flag) and its
# low 24 bits from the originator counter.
INVOKE_ID_FLAGS = 0x20000000
DEVICE_LOG_BACKUP_ALERT = 0x8F12


def restore_pan_data(backup: HanBackup) -> Data:
    """The restore_PAN parameter for ``backup``."""
    return structure(
        octet_string(backup.extended_pan_id),
        array(*(structure(octet_string(eui), octet_string(key)) for eui, key in backup.entries)),
    )


@dataclass(frozen=True)
class HanDeviceLogRestore(InventoryCodec):
    """CCS03: the old hub's HAN backup from the inventory, as a restore_PAN action."""

    def build_from(self, body: Body, inventory: Inventory) -> bytes:
        return self.build_counted(body, inventory, 0)

    def build_counted(self, body: Body, inventory: Inventory, counter: int) -> bytes:
        text = body.get(OLD_CHF)
        if not isinstance(text, str):
            raise TransformError(f"{OLD_CHF} is missing")
        try:
            old = Eui64.parse(text)
        except InvalidEui64 as exc:
            raise TransformError(f"{OLD_CHF}: {exc}") from None
        backup = inventory.han_backup(old.value)
        if backup is None:
            raise TransformError(
                f"{OLD_CHF} {old.hyphenated} has no HAN device log backup in the inventory",
                ResponseCode.UNKNOWN_DEVICE,
            )
        apdu = AccessRequest(
            INVOKE_ID_FLAGS | (counter & 0xFFFFFF),
            None,
            [
                RequestSpecification(
                    RequestKind.ACTION,
                    CosemDescriptor(
                        ZIGBEE_NETWORK_CONTROL_CLASS, ZIGBEE_NETWORK_CONTROL, RESTORE_PAN_METHOD
                    ),
                )
            ],
            [restore_pan_data(backup)],
        )
        return apdu.encode()

    def parse(self, payload: bytes) -> tuple[Body, dt.datetime | None]:
        raise TransformError("a HAN device log restore names the old hub, which it does not carry")


def _backup_from(data: Data, what: str) -> HanBackup:
    items = data.value
    if data.type is not DataType.STRUCTURE or not isinstance(items, list) or len(items) != 2:
        raise TransformError(f"{what}: not (extended PAN id, device log)")
    pan, log = items
    entries: list[tuple[bytes, bytes]] = []
    if log.type is not DataType.ARRAY or not isinstance(log.value, list):
        raise TransformError(f"{what}: the device log is not an array")
    for entry in log.value:
        fields = entry.value
        if not isinstance(fields, list) or len(fields) != 2:
            raise TransformError(f"{what}: a device log entry is not (id, key)")
        eui, key = fields[0].value, fields[1].value
        if not isinstance(eui, bytes) or not isinstance(key, bytes):
            raise TransformError(f"{what}: a device log entry is not two octet strings")
        entries.append((eui, key))
    if not isinstance(pan.value, bytes):
        raise TransformError(f"{what}: the extended PAN id is not an octet string")
    try:
        return HanBackup(pan.value, tuple(entries))
    except ValueError as exc:
        raise TransformError(f"{what}: {exc}") from None


def restored_backup(payload: bytes) -> HanBackup:
    """The HAN backup a CCS03 payload carries (the restore_PAN parameter)."""
    try:
        apdu = decode_xdlms(payload)
    except GbcsError as exc:
        raise TransformError(f"CCS03 payload: {exc}") from None
    if not isinstance(apdu, AccessRequest) or len(apdu.data) != 1:
        raise TransformError("CCS03 payload is not one restore_PAN action")
    return _backup_from(apdu.data[0], "restore_PAN")


def backup_from_alert(payload: bytes) -> HanBackup:
    """The HAN backup in a comms hub's device log backup alert (CS14, 0x8F12): the alert
    body is (alert code, time, (backup time, extended PAN id, device log))."""
    try:
        apdu = decode_xdlms(payload)
    except GbcsError as exc:
        raise TransformError(f"CS14 alert: {exc}") from None
    if not isinstance(apdu, DataNotification):
        raise TransformError("CS14 alert is not a data notification")
    items = apdu.body.value
    if (
        apdu.body.type is not DataType.STRUCTURE
        or not isinstance(items, list)
        or len(items) != 3
        or items[0].value != DEVICE_LOG_BACKUP_ALERT
    ):
        raise TransformError("not a device log backup alert (0x8F12)")
    inner = items[2].value
    if not isinstance(inner, list) or len(inner) != 3:
        raise TransformError("CS14 alert: the backup is not (time, extended PAN id, device log)")
    return _backup_from(structure(inner[1], inner[2]), "CS14 alert")
