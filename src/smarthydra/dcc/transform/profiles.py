"""The dccboxed profile: the DCC Boxed / RTDS test inventory, so that a transform's output
is comparable with the RTDS file of the same use case."""

from __future__ import annotations

from smarthydra.dcc.transform.device import DeviceType, Target

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
