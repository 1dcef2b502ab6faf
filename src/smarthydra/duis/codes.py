"""DUIS response codes (the ``ResponseCode`` enumeration of the DUIS 5.4 schema) and meanings."""

from __future__ import annotations

import enum


class ResponseCode(enum.Enum):
    """What the DCC answers a service request with. Values are the XSD's literal codes."""

    SUCCESS = "I0"
    ACKNOWLEDGED = "I99"
    USER_NOT_AUTHORISED = "E1"
    ROLE_NOT_ELIGIBLE = "E2"
    USER_ROLE_NOT_ACTIVE = "E3"
    NOT_DEVICE_OWNER = "E4"
    INVALID_SMI_STATUS = "E5"
    INVALID_REQUEST = "E11"
    INVALID_COMMAND_VARIANT = "E12"
    WRONG_URL_FOR_COMMAND_VARIANT = "E13"
    INVALID_EXECUTION_DATE = "E17"
    UNKNOWN_DEVICE = "E19"
    REQUEST_ID_COUNTER_NOT_INCREASING = "E20"
    REQUEST_ID_ORIGINATOR_MISMATCH = "E21"

    @property
    def is_success(self) -> bool:
        return self.value.startswith("I")

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS: dict[ResponseCode, str] = {
    ResponseCode.SUCCESS: "success",
    ResponseCode.ACKNOWLEDGED: "acknowledged: accepted for processing, the result follows",
    ResponseCode.USER_NOT_AUTHORISED: "the sender is not a DCC user, or is not active",
    ResponseCode.ROLE_NOT_ELIGIBLE: "the sender's user role is not eligible for this service request",
    ResponseCode.USER_ROLE_NOT_ACTIVE: "the sender does not hold this user role, or it is not active",
    ResponseCode.NOT_DEVICE_OWNER: "the sender is not the registered party for this device on this date",
    ResponseCode.INVALID_SMI_STATUS: "the device's SMI status does not allow this service request",
    ResponseCode.INVALID_REQUEST: "the request is malformed or names an unknown service request variant",
    ResponseCode.INVALID_COMMAND_VARIANT: "the command variant is not valid for this service request",
    ResponseCode.WRONG_URL_FOR_COMMAND_VARIANT: "the request was sent to the wrong URL for its command variant",
    ResponseCode.INVALID_EXECUTION_DATE: "the execution date-time is invalid",
    ResponseCode.UNKNOWN_DEVICE: "the target device is not in the smart metering inventory",
    ResponseCode.REQUEST_ID_COUNTER_NOT_INCREASING: "the RequestID counter is not greater than the last one used",
    ResponseCode.REQUEST_ID_ORIGINATOR_MISMATCH: "the RequestID originator is not the sender",
}


class DccAlertCode(enum.Enum):
    """DCC alerts the DCC raises itself (a subset, those this system produces)."""

    QUARANTINED_REQUEST = "AD1"  # anomaly detection held the request

    @property
    def meaning(self) -> str:
        return {DccAlertCode.QUARANTINED_REQUEST: "request quarantined by anomaly detection"}[self]
