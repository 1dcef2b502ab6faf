"""A structured, JSON-friendly description of a GBCS message (what ``gbcs parse`` prints).

The payload is decoded with its codec (xDLMS, GBZ or DER) and shown both readably
(``payload.decoded``) and as the use-case parameters ``gbcs build --params`` accepts
(``params``). With a catalogue the use case, its category, sensitivity and eligible roles
are named; with an RTDS keystore the MAC and signature are checked and sensitive blocks
decrypted and decoded (A-XDR Data for xDLMS, the ZCL command for GBZ).
"""

from __future__ import annotations

from smarthydra.gbcs.alerts import device_alert
from smarthydra.gbcs.axdr import Data, decode_data_exact
from smarthydra.gbcs.catalogue import Catalogue
from smarthydra.gbcs.der import DerNode
from smarthydra.gbcs.envelope import CraFlag, GbcsMessage
from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.gbcs.gbz import EncryptedZcl, GbzPayload, decode_zcl_body
from smarthydra.gbcs.gbz_clusters import cluster_command_to_json, decode_cluster_command
from smarthydra.gbcs.payload_json import Payload, der_to_json, gbz_to_json, zcl_body_to_json
from smarthydra.gbcs.payload_json import xdlms_to_json as _xdlms_json
from smarthydra.gbcs.rtds import Outcome, RtdsKeystore, check_message
from smarthydra.gbcs.usecase import UseCaseParams
from smarthydra.gbcs.usecase import decode_payload as _decode_any
from smarthydra.gbcs.xdlms import XdlmsApdu, decode_xdlms

XDLMS_TAGS = frozenset({0xD9, 0xDA, 0x0F})


def payload_kind(payload: bytes) -> str:
    if not payload:
        return "empty"
    if payload[0] in XDLMS_TAGS:
        return "xdlms"
    if payload[:2] == b"\x01\x09":
        return "gbz"
    if payload[0] in (0x30, 0x02, 0x04, 0x05):
        return "der"
    return "other"


def decode_payload(payload: bytes) -> XdlmsApdu | None:
    """The typed xDLMS payload, else None. Raises GbcsDecodeError if malformed."""
    if payload_kind(payload) == "xdlms":
        return decode_xdlms(payload)
    return None


def xdlms_to_json(apdu: XdlmsApdu) -> dict[str, object]:
    return _xdlms_json(apdu)


def _decoded_to_json(payload: Payload) -> dict[str, object]:
    if isinstance(payload, GbzPayload):
        return gbz_to_json(payload)
    if isinstance(payload, DerNode):
        return der_to_json(payload)
    return _xdlms_json(payload)


def _date(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


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
            header["response_sensitive"] = use_case.response_sensitive
            header["remote_party_roles"] = [r.name.lower() for r in use_case.remote_party_roles]
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
    payload_info: dict[str, object] = {"kind": kind, "hex": gs.payload.hex()}
    decoded: Payload | None = None
    try:
        decoded = _decode_any(gs.payload, gs.cra_flag)
    except GbcsDecodeError as exc:
        payload_info["error"] = f"{type(exc).__name__}: {exc}"
    else:
        payload_info["decoded"] = _decoded_to_json(decoded)
        payload_info["roundtrip"] = decoded.encode() == gs.payload
        if gs.cra_flag is CraFlag.ALERT:
            try:
                payload_info["alert"] = device_alert(decoded, catalogue).to_json()
            except GbcsDecodeError as exc:
                payload_info["alert"] = {"error": str(exc)}
    out["payload"] = payload_info
    if decoded is not None:
        out["params"] = UseCaseParams(
            payload=decoded,
            date_time=gs.date_time,
            supplementary_remote_party_id=other.supplementary_remote_party_id,
            supplementary_remote_party_counter=other.supplementary_remote_party_counter,
            supplementary_originator_counter=other.supplementary_originator_counter,
            supplementary_remote_party_ka_certificate=other.supplementary_remote_party_ka_certificate,
        ).to_json()
    if keystore is not None:
        check = check_message("message", message.wire(), keystore)
        checks: dict[str, object] = {
            "mac": check.mac.value,
            "signature": check.signature.value,
        }
        if check.protected_blocks:
            checks["sensitive_blocks"] = check.protected_blocks
            checks["decrypted"] = _decrypted_to_json(decoded, check.decrypted)
            if check.decryption_skipped:
                checks["decryption"] = Outcome.SKIPPED.value
        out["checks"] = checks
    return out


def _decrypted_to_json(payload: Payload | None, plaintexts: tuple[bytes, ...]) -> list[object]:
    if isinstance(payload, GbzPayload):
        encrypted = [c for c in payload.components if isinstance(c.body, EncryptedZcl)]
        out: list[object] = []
        for component, plain in zip(encrypted, plaintexts, strict=False):
            header = component.zcl
            item: dict[str, object] = {"hex": plain.hex()}
            try:
                typed = decode_cluster_command(
                    component.cluster_id, header.frame_control, header.command_id, plain
                )
                if typed is not None:
                    item["zcl"] = cluster_command_to_json(typed)
                else:
                    body = decode_zcl_body(header.frame_control, header.command_id, plain)
                    item["zcl"] = zcl_body_to_json(body)
            except GbcsDecodeError as exc:
                item["zcl_error"] = str(exc)  # shown raw, with why it did not decode
            out.append(item)
        return out
    return [_data_json(p) for p in plaintexts]


def _data_json(plaintext: bytes) -> object:
    try:
        data: Data = decode_data_exact(plaintext)
    except GbcsDecodeError:
        return {"hex": plaintext.hex()}
    return {"hex": plaintext.hex(), "data": data.to_json()}


__all__ = ["decode_payload", "describe_message", "payload_kind", "xdlms_to_json"]
