"""A structured, JSON-friendly description of a GBCS message (what ``gbcs parse`` prints).

The payload is decoded where a typed codec exists (xDLMS for now; GBZ and DER payloads are
shown as hex). With an RTDS keystore the MAC and signature are checked and sensitive blocks
decrypted (and decoded as A-XDR Data when they are).
"""

from __future__ import annotations

from smarthydra.gbcs.axdr import Data, decode_data_exact
from smarthydra.gbcs.catalogue import Catalogue
from smarthydra.gbcs.envelope import GbcsMessage
from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.gbcs.rtds import Outcome, RtdsKeystore, check_message
from smarthydra.gbcs.xdlms import (
    AccessRequest,
    AccessResponse,
    DataNotification,
    XdlmsApdu,
    decode_xdlms,
    result_name,
)

XDLMS_TAGS = frozenset({0xD9, 0xDA, 0x0F})


def payload_kind(payload: bytes) -> str:
    if not payload:
        return "empty"
    if payload[0] in XDLMS_TAGS:
        return "xdlms"
    if payload[:2] == b"\x01\x09":
        return "gbz"
    if payload[0] == 0x30:
        return "der"
    return "other"


def decode_payload(payload: bytes) -> XdlmsApdu | None:
    """The typed payload where a codec exists, else None. Raises GbcsDecodeError if malformed."""
    if payload_kind(payload) == "xdlms":
        return decode_xdlms(payload)
    return None


def _date(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def xdlms_to_json(apdu: XdlmsApdu) -> dict[str, object]:
    if isinstance(apdu, AccessRequest):
        return {
            "apdu": "access-request",
            "invoke_id": f"{apdu.invoke_id:08X}",
            "date_time": _date(apdu.date_time),
            "requests": [
                {
                    "kind": spec.kind.name.lower(),
                    "class_id": spec.descriptor.class_id,
                    "obis": spec.descriptor.obis,
                    "index": spec.descriptor.index,
                    **(
                        {"selector": spec.selector, "selection": spec.selection.to_json()}
                        if spec.selection is not None
                        else {}
                    ),
                }
                for spec in apdu.specifications
            ],
            "data": [item.to_json() for item in apdu.data],
        }
    if isinstance(apdu, AccessResponse):
        return {
            "apdu": "access-response",
            "invoke_id": f"{apdu.invoke_id:08X}",
            "date_time": _date(apdu.date_time),
            "data": [item.to_json() for item in apdu.data],
            "results": [
                {"kind": r.kind.name.lower(), "result": result_name(r.result)} for r in apdu.results
            ],
        }
    assert isinstance(apdu, DataNotification)
    return {
        "apdu": "data-notification",
        "invoke_id": f"{apdu.invoke_id:08X}",
        "date_time": _date(apdu.date_time),
        "body": apdu.body.to_json(),
    }


def describe_message(
    message: GbcsMessage,
    *,
    catalogue: Catalogue | None = None,
    keystore: RtdsKeystore | None = None,
) -> dict[str, object]:
    gs = message.general_signing
    other = gs.other_information
    header: dict[str, object] = {
        "cra_flag": gs.cra_flag.name.lower(),
        "originator_counter": gs.originator_counter,
        "originator": gs.originator.hex().upper(),
        "recipient": gs.recipient.hex().upper(),
        "date_time": _date(gs.date_time),
        "message_code": f"{other.message_code:04X}",
    }
    if other.supplementary_remote_party_id is not None:
        header["supplementary_remote_party_id"] = other.supplementary_remote_party_id.hex().upper()
    if other.supplementary_remote_party_counter is not None:
        header["supplementary_remote_party_counter"] = other.supplementary_remote_party_counter
    if other.supplementary_originator_counter is not None:
        header["supplementary_originator_counter"] = other.supplementary_originator_counter
    if other.supplementary_remote_party_ka_certificate is not None:
        header["supplementary_remote_party_ka_certificate"] = (
            other.supplementary_remote_party_ka_certificate.hex()
        )
    if catalogue is not None:
        header["message"] = catalogue.describe_message_code(other.message_code)
        use_case = catalogue.for_message_code(other.message_code)
        if use_case is not None:
            header["use_case"] = use_case.code
            header["category"] = use_case.category.value
    out: dict[str, object] = {
        "envelope": "general-ciphering" if message.is_macd else "general-signing",
        "header": header,
        "signature": (
            "absent" if gs.signature is None else gs.signature.hex() if gs.signature else "none"
        ),
    }
    if message.mac is not None:
        out["mac"] = message.mac.hex()
    kind = payload_kind(gs.payload)
    payload: dict[str, object] = {"kind": kind, "hex": gs.payload.hex()}
    try:
        apdu = decode_payload(gs.payload)
    except GbcsDecodeError as exc:
        payload["error"] = f"{type(exc).__name__}: {exc}"
    else:
        if apdu is not None:
            payload["decoded"] = xdlms_to_json(apdu)
            payload["roundtrip"] = apdu.encode() == gs.payload
    out["payload"] = payload
    if keystore is not None:
        check = check_message("message", message.wire(), keystore)
        checks: dict[str, object] = {
            "mac": check.mac.value,
            "signature": check.signature.value,
        }
        if check.protected_blocks:
            checks["sensitive_blocks"] = check.protected_blocks
            checks["decrypted"] = [_decrypted_to_json(block) for block in check.decrypted]
            if check.decryption_skipped:
                checks["decryption"] = Outcome.SKIPPED.value
        out["checks"] = checks
    return out


def _decrypted_to_json(plaintext: bytes) -> object:
    try:
        data: Data = decode_data_exact(plaintext)
    except GbcsDecodeError:
        return {"hex": plaintext.hex()}
    return {"hex": plaintext.hex(), "data": data.to_json()}


__all__ = ["decode_payload", "describe_message", "payload_kind", "xdlms_to_json"]
