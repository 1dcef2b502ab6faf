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


_CODES_BY_VALUE: dict[str, ResponseCode] = {c.value: c for c in ResponseCode}


def describe_response_code(code: str) -> str:
    """What any ``ResponseCode`` of the DUIS 5.4 schema means, as far as it can be told.

    The codes this DCC produces have their meaning from :class:`ResponseCode`. The schema's
    service-specific codes are structured ``E``/``W`` + service reference (two digits each
    part) + a two-digit number: ``E050102`` is error 02 of service reference 5.1, and that is
    what is said of them. The remaining generic codes (E30-E100, E1000-E1011) are named as such;
    this DCC never sends them.
    """
    known = _CODES_BY_VALUE.get(code)
    if known is not None:
        return known.meaning
    # Not a code this DCC sends: described from its structure.
    kind = {"E": "error", "W": "warning"}.get(code[:1])
    digits = code[1:]
    if kind is None or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{code!r} is not a DUIS response code")
    if len(digits) == 6:
        section, sub, number = int(digits[:2]), int(digits[2:4]), digits[4:]
        return f"{kind} {number} specific to service reference {section}.{sub}"
    return f"generic DUIS {kind} {code} (not produced by this DCC)"


class RefusalReason(enum.Enum):
    """Why a request was refused before the DCC looked at it, machine-readable.

    DUIS 5.4 gives every authentication failure the one code E1 (a signer other than the
    RequestID originator E21) and every unreadable document E11; its schema enumerates
    further generic codes (E30-E100, E1000-E1011) without saying what they mean, so none is
    borrowed for these. The gateway keeps the DUIS code and states the reason beside it: in
    the ``X-DUIS-Refusal`` HTTP header, and in the signed DUIS response as the comment
    ``<!--smarthydra:refusal=VALUE-->`` inside the document element (a comment, so the
    document stays schema-valid and its signature, made without comments, still verifies).
    """

    MALFORMED_XML = "malformed-xml"
    SCHEMA_INVALID = "schema-invalid"
    BODY_MISMATCH = "body-mismatch"
    INVALID_DOCUMENT = "invalid-document"
    SIGNATURE_MISSING = "signature-missing"
    SIGNATURE_MALFORMED = "signature-malformed"
    SIGNATURE_ALGORITHM = "signature-algorithm-unsupported"
    DIGEST_MISMATCH = "digest-mismatch"  # the document changed after it was signed
    SIGNATURE_INVALID = "signature-invalid"  # the SignatureValue does not verify
    CERTIFICATE_UNKNOWN = "certificate-unknown"
    CERTIFICATE_REVOKED = "certificate-revoked"
    CERTIFICATE_NOT_ACCEPTABLE = "certificate-not-acceptable"  # expired, wrong role or usage
    SIGNER_NOT_ORIGINATOR = "signer-not-originator"
    TLS_IDENTITY_MISMATCH = "tls-identity-mismatch"


class DccAlertCode(enum.Enum):
    """DCC alerts the DCC raises itself (a subset, those this system produces)."""

    QUARANTINED_REQUEST = "AD1"  # anomaly detection held the request

    @property
    def meaning(self) -> str:
        return {DccAlertCode.QUARANTINED_REQUEST: "request quarantined by anomaly detection"}[self]
