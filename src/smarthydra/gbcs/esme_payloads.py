"""xDLMS payloads of the ESME use cases carried end to end: ECS17b and ECS43.

Built with the A-XDR / xDLMS codec and checked byte for byte against the RTDS:

- ECS17b (SRV 4.1.1, message code 0x0027) Read ESME Energy Registers (Import Energy): an
  ACTION on the data-protection object 0-0:43.2.8.255 asking for the protected value of the
  import registers; the response carries the register values encrypted to the requester.
- ECS43 (SRV 7.2, message code 0x0050) Remotely Open the Load Switch: an ACTION
  ``execute`` on the disconnect script table 0-0:10.0.106.255 with script 52.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smarthydra.gbcs.axdr import (
    Data,
    DataType,
    array,
    decode_data_exact,
    double_long_unsigned,
    enum_value,
    long_unsigned,
    octet_string,
    structure,
)
from smarthydra.gbcs.errors import BadField, GbcsDecodeError, GbcsEncodeError
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    CosemDescriptor,
    RequestKind,
    RequestSpecification,
    ResponseSpecification,
    decode_xdlms,
)

MESSAGE_CODE_ECS17B = 0x0027
MESSAGE_CODE_ECS43 = 0x0050

INVOKE_ID_FLAGS = 0x20  # high byte of long-invoke-id-and-priority as used throughout the RTDS

DATA_PROTECTION = CosemDescriptor(30, bytes.fromhex("00002B0208FF"), 1)  # protected get
DISCONNECT_SCRIPT_TABLE = CosemDescriptor(9, bytes.fromhex("00000A006AFF"), 1)  # execute
OPEN_LOAD_SWITCH_SCRIPT = 0x0034
IMPORT_REGISTERS_OBJECT = bytes.fromhex("00005E2C220A")  # object the ECS17b protection covers
PROTECTION_TYPE = 2  # authentication and encryption of the response
UNIT_WH = 0x1E
UNIT_VARH = 0x20

ACTION_SUCCESS = 0x00
ACTION_HARDWARE_FAULT = 0x01


def invoke_id(counter: int) -> int:
    """long-invoke-id-and-priority: the low 24 bits of the originator counter."""
    return (INVOKE_ID_FLAGS << 24) | (counter & 0xFFFFFF)


def cosem_date_time(moment: datetime) -> bytes:
    """A 12-byte COSEM date-time (UTC, deviation not specified, as GBCS devices send)."""
    if not 0 <= moment.year <= 0xFFFE:
        raise GbcsEncodeError(f"year {moment.year} does not fit a COSEM date-time")
    return (
        moment.year.to_bytes(2, "big")
        + bytes([moment.month, moment.day, 0xFF, moment.hour, moment.minute, moment.second])
        + bytes([moment.microsecond // 10000])
        + b"\x80\x00"  # deviation: not specified
        + b"\xff"  # clock status: not specified
    )


def _protection_parameters(counter: int, originator: bytes, recipient: bytes) -> Data:
    """Data-protection parameters: transaction id, originator, recipient, key information."""
    return array(
        structure(
            enum_value(PROTECTION_TYPE),
            structure(
                octet_string(b"\x04" + counter.to_bytes(8, "big")),
                octet_string(originator),
                octet_string(recipient),
                octet_string(b""),  # no date-time
                structure(
                    enum_value(2),
                    structure(octet_string(b"\x02"), octet_string(b"")),
                ),
            ),
        )
    )


def read_import_registers_command(counter: int, requester: bytes, meter: bytes) -> bytes:
    """ECS17b command payload: read the active and reactive import registers, protected."""
    protected_object = array(
        structure(
            long_unsigned(1),
            octet_string(IMPORT_REGISTERS_OBJECT),
            Data(DataType.INTEGER, 2),
            long_unsigned(0),
            structure(enum_value(0), Data(DataType.NULL_DATA)),
        )
    )
    return AccessRequest(
        invoke_id(counter),
        None,
        [RequestSpecification(RequestKind.ACTION, DATA_PROTECTION)],
        [structure(protected_object, _protection_parameters(counter, requester, meter))],
    ).encode()


@dataclass(frozen=True)
class ImportRegisters:
    """What ECS17b reports: active import energy (Wh) and reactive import energy (varh)."""

    active_import_wh: int
    reactive_import_varh: int

    def to_data(self) -> Data:
        for value in (self.active_import_wh, self.reactive_import_varh):
            if not 0 <= value <= 0xFFFFFFFF:
                raise GbcsEncodeError(f"register value {value} is not a double-long-unsigned")
        return structure(
            structure(
                double_long_unsigned(self.active_import_wh),
                _scaler_unit(UNIT_WH),
                double_long_unsigned(self.reactive_import_varh),
                _scaler_unit(UNIT_VARH),
            )
        )

    def to_plaintext(self) -> bytes:
        return self.to_data().encode()

    @classmethod
    def from_plaintext(cls, data: bytes) -> ImportRegisters:
        decoded = decode_data_exact(data)
        items = decoded.value
        if decoded.type is not DataType.STRUCTURE or not isinstance(items, list) or len(items) != 1:
            raise BadField(f"ECS17b register data is not structure(1): {data.hex()}")
        inner = items[0].value
        if not isinstance(inner, list) or len(inner) != 4:
            raise BadField(f"ECS17b register data is not structure(4) inside: {data.hex()}")
        active, active_unit, reactive, reactive_unit = inner
        if (
            active.type is not DataType.DOUBLE_LONG_UNSIGNED
            or reactive.type is not DataType.DOUBLE_LONG_UNSIGNED
            or active_unit != _scaler_unit(UNIT_WH)
            or reactive_unit != _scaler_unit(UNIT_VARH)
        ):
            raise BadField(f"ECS17b registers are not double-long-unsigned Wh/varh: {data.hex()}")
        assert isinstance(active.value, int) and isinstance(reactive.value, int)
        return cls(active.value, reactive.value)


def _scaler_unit(unit: int) -> Data:
    return structure(Data(DataType.INTEGER, 0), enum_value(unit))


def read_import_registers_response(
    counter: int, meter: bytes, requester: bytes, protected_block: bytes
) -> bytes:
    """ECS17b success response payload around an already-encrypted ``31 00000000 ...`` block."""
    return AccessResponse(
        invoke_id(counter),
        None,
        [
            structure(
                _protection_parameters(counter, meter, requester), octet_string(protected_block)
            )
        ],
        [ResponseSpecification(RequestKind.ACTION, ACTION_SUCCESS)],
    ).encode()


def open_load_switch_command(counter: int) -> bytes:
    """ECS43 command payload: execute the disconnect script (open the load switch)."""
    return AccessRequest(
        invoke_id(counter),
        None,
        [RequestSpecification(RequestKind.ACTION, DISCONNECT_SCRIPT_TABLE)],
        [long_unsigned(OPEN_LOAD_SWITCH_SCRIPT)],
    ).encode()


def action_result_response(counter: int, result: int) -> bytes:
    """A one-action access-response with no data: ECS43's answer, or any failed action."""
    return AccessResponse(
        invoke_id(counter),
        None,
        [Data(DataType.NULL_DATA)],
        [ResponseSpecification(RequestKind.ACTION, result)],
    ).encode()


def action_result(payload: bytes) -> int:
    """The result of a single-action access-response."""
    try:
        apdu = decode_xdlms(payload)
    except GbcsDecodeError as exc:
        raise BadField(f"not an xDLMS access-response: {exc}") from None
    if not isinstance(apdu, AccessResponse) or len(apdu.results) != 1:
        raise BadField(f"not a single-action access-response: {payload.hex()}")
    return apdu.results[0].result
