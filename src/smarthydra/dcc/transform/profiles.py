"""The dccboxed profile: the DCC Boxed / RTDS test inventory, so that a transform's output
is comparable with the RTDS file of the same use case."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from smarthydra.dcc.transform.device import DeviceType, Inventory, InventoryDevice, Target

# The RTDS devices (00-DB-12-34-56-78-90-Ax) and what each one is.
DCCBOXED_INVENTORY: dict[bytes, Target] = {
    bytes.fromhex("00DB1234567890A0"): Target(DeviceType.ESME),
    bytes.fromhex("00DB1234567890A1"): Target(DeviceType.GSME),
    bytes.fromhex("00DB1234567890A2"): Target(DeviceType.CHF),
    bytes.fromhex("00DB1234567890A3"): Target(DeviceType.GPF),
    bytes.fromhex("00DB1234567890A4"): Target(DeviceType.PPMID),
    bytes.fromhex("00DB1234567890A5"): Target(DeviceType.HCALCS),
    bytes.fromhex("00DB1234567890A6"): Target(DeviceType.SAPC),
}

# The other devices the RTDS joins its devices to (8.7: CS03A1/A2/B/C), typed as the SUCCESS
# join commands type them; their key-agreement certificates are the RTDS keystore's.
DCCBOXED_OTHER_DEVICES: dict[bytes, DeviceType] = {
    bytes.fromhex("00DB123456789093"): DeviceType.ESME,
    bytes.fromhex("00DB123456789094"): DeviceType.GSME,
    bytes.fromhex("00DB123456789098"): DeviceType.PPMID,
    bytes.fromhex("00DB12345678909A"): DeviceType.HCALCS,
    bytes.fromhex("00DB12345678909C"): DeviceType.GPF,
    # The devices in the device log of a replaced gas proxy (8.12.2, GCS59).
    bytes.fromhex("0011223344556677"): DeviceType.PPMID,
    bytes.fromhex("8899AABBCCDDEEFF"): DeviceType.IHD,
}

# A gas proxy replaced in DCC Boxed (not itself an RTDS device) and its device log.
DCCBOXED_OLD_GPF = bytes.fromhex("00DB1234567890B3")
DCCBOXED_DEVICE_LOGS: dict[bytes, tuple[bytes, ...]] = {
    DCCBOXED_OLD_GPF: (bytes.fromhex("0011223344556677"), bytes.fromhex("8899AABBCCDDEEFF")),
}


def _certificate(keystore: Path | None, eui: bytes) -> bytes | None:
    if keystore is None:
        return None
    path = keystore / f"{eui.hex()}-ka.pem"
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)
    except (OSError, ValueError):
        return None


def dccboxed_inventory(keystore: Path | None = None) -> Inventory:
    """The DCC Boxed inventory: every device above, with its key-agreement certificate from
    the RTDS keystore directory ``keystore`` when given (and held there)."""
    kinds = {eui: t.device_type for eui, t in DCCBOXED_INVENTORY.items()}
    kinds.update(DCCBOXED_OTHER_DEVICES)
    devices = {
        eui: InventoryDevice(kind, _certificate(keystore, eui)) for eui, kind in kinds.items()
    }
    return Inventory(devices, dict(DCCBOXED_DEVICE_LOGS))


# Who the DCC is when it sends a use case in its own name in DCC Boxed (the ACB otherwise):
# the transitional CoS party signs CS02b supplier-by-transCoS.
DCCBOXED_TRANSITIONAL_COS = bytes.fromhex("90B3D51F30000004")
DCCBOXED_DCC = bytes.fromhex("90B3D51F30000002")
DCCBOXED_SENDERS: dict[str, bytes] = {
    "CS02bSupplierByTransCoS": DCCBOXED_TRANSITIONAL_COS,
    "CS02bSupplierBySupplierHandover": DCCBOXED_DCC,
    "CS02bNOByNOHandover": DCCBOXED_DCC,
    "CS02bACBByACB": DCCBOXED_DCC,
}
