"""xDLMS payloads of the ESME use cases carried end to end: ECS17b and ECS43.

These follow the RTDS byte for byte (the tests rebuild the RTDS payloads from their values):

- ECS17b (SRV 4.1.1, message code 0x0027) Read ESME Energy Registers (Import Energy): an
  ACTION on the data-protection object 0-0:43.2.8.255 asking for the protected value of the
  import registers; the response carries the register values encrypted to the requester.
- ECS43 (SRV 7.2, message code 0x0050) Remotely Open the Load Switch: an ACTION
  ``execute`` on the disconnect script table 0-0:10.0.106.255 with script 52.

The general A-XDR/xDLMS codec of the GBCS-complete work replaces the hand framing here; the
values and bytes stay the same.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from smarthydra.gbcs.errors import BadField, GbcsEncodeError, Truncated

MESSAGE_CODE_ECS17B = 0x0027
MESSAGE_CODE_ECS43 = 0x0050

ACCESS_REQUEST = 0xD9
ACCESS_RESPONSE = 0xDA
INVOKE_ID_FLAGS = 0x20  # high byte of long-invoke-id-and-priority as used throughout the RTDS

_DATA_PROTECTION = bytes.fromhex("001E00002B0208FF01")  # class 30, 0-0:43.2.8.255, method 1
_DISCONNECT_SCRIPT = bytes.fromhex("000900000A006AFF01")  # class 9, 0-0:10.0.106.255, method 1
_OPEN_LOAD_SWITCH_SCRIPT = 0x0034
_IMPORT_REGISTERS_OBJECT = bytes.fromhex("00005E2C220A")  # protected-object list for ECS17b
_KEY_INFO = bytes.fromhex("0202160202020901020900")
UNIT_WH = 0x1E
UNIT_VARH = 0x20

ACTION_SUCCESS = 0x00
ACTION_HARDWARE_FAULT = 0x01


def invoke_id(counter: int) -> bytes:
    """long-invoke-id-and-priority: the low 24 bits of the originator counter."""
    return bytes([INVOKE_ID_FLAGS]) + (counter & 0xFFFFFF).to_bytes(3, "big")


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


def _protection_parameters(counter: int, originator: bytes, recipient: bytes) -> bytes:
    """The data-protection parameters: transaction id, originator, recipient, key info."""
    return (
        bytes.fromhex("010102021602020509")  # array(1) of structure(enum 2, structure(5)...)
        + b"\x09\x04"
        + counter.to_bytes(8, "big")
        + b"\x09\x08"
        + originator
        + b"\x09\x08"
        + recipient
        + b"\x09\x00"
        + _KEY_INFO
    )


def read_import_registers_command(counter: int, requester: bytes, meter: bytes) -> bytes:
    """ECS17b command payload: read the active and reactive import registers, protected."""
    return (
        bytes([ACCESS_REQUEST])
        + invoke_id(counter)
        + b"\x00"  # no date-time
        + b"\x01\x03"  # one access-request-specification: action
        + _DATA_PROTECTION
        + b"\x01\x02\x02"  # one data: structure(2)
        + b"\x01\x01\x02\x05\x12\x00\x01\x09\x06"
        + _IMPORT_REGISTERS_OBJECT
        + b"\x0f\x02\x12\x00\x00\x02\x02\x16\x00\x00"
        + _protection_parameters(counter, requester, meter)
    )


@dataclass(frozen=True)
class ImportRegisters:
    """What ECS17b reports: active import energy (Wh) and reactive import energy (varh)."""

    active_import_wh: int
    reactive_import_varh: int

    def to_plaintext(self) -> bytes:
        for value in (self.active_import_wh, self.reactive_import_varh):
            if not 0 <= value <= 0xFFFFFFFF:
                raise GbcsEncodeError(f"register value {value} is not a double-long-unsigned")
        return (
            b"\x02\x01\x02\x04"
            + b"\x06"
            + struct.pack(">I", self.active_import_wh)
            + bytes([0x02, 0x02, 0x0F, 0x00, 0x16, UNIT_WH])
            + b"\x06"
            + struct.pack(">I", self.reactive_import_varh)
            + bytes([0x02, 0x02, 0x0F, 0x00, 0x16, UNIT_VARH])
        )

    @classmethod
    def from_plaintext(cls, data: bytes) -> ImportRegisters:
        if len(data) != 26:
            raise Truncated(f"ECS17b register data is 26 bytes, got {len(data)}")
        if (
            data[:5] != b"\x02\x01\x02\x04\x06"
            or data[9:15] != bytes([0x02, 0x02, 0x0F, 0x00, 0x16, UNIT_WH])
            or data[15] != 0x06
            or data[20:26] != bytes([0x02, 0x02, 0x0F, 0x00, 0x16, UNIT_VARH])
        ):
            raise BadField(f"ECS17b register data has an unexpected layout: {data.hex()}")
        return cls(struct.unpack(">I", data[5:9])[0], struct.unpack(">I", data[16:20])[0])


def read_import_registers_response(
    counter: int, meter: bytes, requester: bytes, protected_block: bytes
) -> bytes:
    """ECS17b success response payload around an already-encrypted ``31 00000000 ...`` block."""
    if len(protected_block) > 0x7F:
        raise GbcsEncodeError("ECS17b protected block too long for a short octet-string")
    return (
        bytes([ACCESS_RESPONSE])
        + invoke_id(counter)
        + b"\x00"  # no date-time
        + b"\x00"  # no access-request-specification echo
        + b"\x01\x02\x02"  # one data: structure(2)
        + _protection_parameters(counter, meter, requester)
        + b"\x09"
        + bytes([len(protected_block)])
        + protected_block
        + b"\x01\x03"
        + bytes([ACTION_SUCCESS])
    )


def open_load_switch_command(counter: int) -> bytes:
    """ECS43 command payload: execute the disconnect script (open the load switch)."""
    return (
        bytes([ACCESS_REQUEST])
        + invoke_id(counter)
        + b"\x00\x01\x03"
        + _DISCONNECT_SCRIPT
        + b"\x01\x12"
        + _OPEN_LOAD_SWITCH_SCRIPT.to_bytes(2, "big")
    )


def action_result_response(counter: int, result: int) -> bytes:
    """A one-action access-response with no data: ECS43's answer, or any failed action."""
    return (
        bytes([ACCESS_RESPONSE])
        + invoke_id(counter)
        + b"\x00\x00\x01\x00\x01\x03"
        + bytes([result])
    )


def action_result(payload: bytes) -> int:
    """The action result of a single-action access-response (last byte after ``01 03``)."""
    if len(payload) < 3 or payload[0] != ACCESS_RESPONSE or payload[-3:-1] != b"\x01\x03":
        raise BadField(f"not a single-action access-response: {payload.hex()}")
    return payload[-1]


def request_counter_of(payload: bytes) -> int:
    """The low 24 bits of the counter carried in an access-request's invoke id."""
    if len(payload) < 5 or payload[0] not in (ACCESS_REQUEST, ACCESS_RESPONSE):
        raise BadField("not an xDLMS access-request or access-response")
    return int.from_bytes(payload[2:5], "big")
