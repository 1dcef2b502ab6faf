"""GBCS responses and alerts back to DCC users as DUIS messages.

- A device's response to a command goes back as a ``ResponseMessage`` naming the service
  request (ServiceReference, ServiceReferenceVariant) and carrying the GBCS as ``GBCSPayload``;
  the header's ResponseID is ``device:user:counter``.
- A device alert becomes a ``DeviceAlertMessage`` (its alert code and the GBCS).
- A future-dated outcome alert (8F66 executed / 8F67 failed) is reported against the service
  request it concerns: a ``ResponseMessage`` holding a ``FutureDatedDeviceAlertMessage``.
- The DCC's own alerts are ``DCCAlertMessage`` documents (:func:`dcc_alert`).

Every document is validated against the DUIS schema when one is given, and signed by the
DCC's XML-signing key (:class:`~smarthydra.duis.xmldsig.XmlSigner`) when a signer is given.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree
from lxml.etree import _Element

from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import RequestId
from smarthydra.duis.xml import (
    SR_NS,
    DuisResponse,
    DuisSchema,
    build_response,
    response_id,
    service_reference_of,
)
from smarthydra.duis.xmldsig import XmlSigner
from smarthydra.eui import Eui64
from smarthydra.gbcs.axdr import DataType
from smarthydra.gbcs.der import decode_der
from smarthydra.gbcs.envelope import CraFlag, GbcsMessage, decode_general_signing, decode_message
from smarthydra.gbcs.errors import GbcsError
from smarthydra.gbcs.gbz import decode_gbz, is_gbz
from smarthydra.gbcs.xdlms import DataNotification, decode_xdlms

FUTURE_DATED_EXECUTED = 0x8F66
FUTURE_DATED_FAILED = 0x8F67
FUTURE_DATED_ALERTS = frozenset({FUTURE_DATED_EXECUTED, FUTURE_DATED_FAILED})


class ResponseMappingError(Exception):
    """A GBCS message that cannot be reported to a DCC user as DUIS."""


@dataclass(frozen=True)
class DeviceMessage:
    """A decoded GBCS response or alert with what the DUIS mapping needs from it."""

    raw: bytes
    cra_flag: CraFlag
    originator: bytes
    recipient: bytes
    counter: int
    message_code: int
    alert_code: int | None
    # For 8F66/8F67: the message code and originator counter of the command it reports on.
    reported_message_code: int | None = None
    reported_counter: int | None = None


def _alert_code(payload: bytes, message_code: int) -> tuple[int | None, int | None, int | None]:
    """(alert code, reported message code, reported counter) from an alert payload."""
    if is_gbz(payload):
        gbz = decode_gbz(payload, alert=True)
        if gbz.alert is None:
            return None, None, None
        if gbz.future_dated is not None:
            fd = gbz.future_dated
            return gbz.alert.alert_code, fd.message_code, fd.originator_counter
        return gbz.alert.alert_code, None, None
    if payload[:1] == b"\x0f":
        apdu = decode_xdlms(payload)
        assert isinstance(apdu, DataNotification)
        items = apdu.body.value if isinstance(apdu.body.value, list) else []
        if not items or items[0].type is not DataType.LONG_UNSIGNED:
            return None, None, None
        code = items[0].value
        assert isinstance(code, int)
        if code in FUTURE_DATED_ALERTS and len(items) >= 3 and isinstance(items[2].value, bytes):
            reported = items[2].value
            if len(reported) >= 10:
                return (
                    code,
                    int.from_bytes(reported[:2], "big"),
                    int.from_bytes(reported[2:10], "big"),
                )
        return code, None, None
    # DER (CS use cases): SEQUENCE { INTEGER alert code, GeneralizedTime, ... }; a future-dated
    # outcome then names the command's originator counter (an INTEGER, alone or first in a
    # SEQUENCE). Its message code is the use case's own alert code, so the alert's is used.
    nodes = decode_der(payload).children
    if not nodes or nodes[0].constructed or nodes[0].tag_number != 2:
        return None, None, None
    code = nodes[0].as_int()
    if code in FUTURE_DATED_ALERTS and len(nodes) >= 3:
        third = nodes[2]
        counter_node = third.children[0] if third.constructed and third.children else third
        if not counter_node.constructed and counter_node.tag_number == 2:
            return code, message_code, counter_node.as_int()
    return code, None, None


def decode_device_message(data: bytes) -> DeviceMessage:
    """Decode a GBCS response or alert (MAC'd general-ciphering or signed general-signing)."""
    try:
        if data[:1] == b"\xdf":
            gs = decode_general_signing(data)
        else:
            message: GbcsMessage = decode_message(data)
            gs = message.general_signing
    except (GbcsError, IndexError) as exc:
        raise ResponseMappingError(f"not a GBCS message: {exc}") from None
    if gs.cra_flag is CraFlag.COMMAND:
        raise ResponseMappingError("a command is not a device response or alert")
    alert = reported_code = reported_counter = None
    if gs.cra_flag is CraFlag.ALERT:
        try:
            alert, reported_code, reported_counter = _alert_code(gs.payload, gs.message_code)
        except (GbcsError, AssertionError) as exc:
            raise ResponseMappingError(f"alert payload does not decode: {exc}") from None
    return DeviceMessage(
        data,
        gs.cra_flag,
        gs.originator,
        gs.recipient,
        gs.originator_counter,
        gs.message_code,
        alert,
        reported_code,
        reported_counter,
    )


def _sr(name: str) -> str:
    return f"{{{SR_NS}}}{name}"


def _finish(root: _Element, schema: DuisSchema | None, signer: XmlSigner | None) -> _Element:
    if schema is not None:
        schema.validate(root)
    if signer is not None:
        signer.sign(root)
    return root


def response_message(
    data: bytes,
    *,
    service_reference_variant: str,
    at: dt.datetime,
    request_id: RequestId | None = None,
    schema: DuisSchema | None = None,
    signer: XmlSigner | None = None,
) -> _Element:
    """A device's GBCS response as a DUIS ``ResponseMessage`` (I0)."""
    message = decode_device_message(data)
    if message.cra_flag is not CraFlag.RESPONSE:
        raise ResponseMappingError("response_message takes a device response (CRA flag 2)")
    rid = request_id or RequestId(
        Eui64(message.recipient), Eui64(message.originator), message.counter
    )
    root = build_response(
        DuisResponse(
            request_id=rid,
            code=ResponseCode.SUCCESS,
            at=at,
            service_reference_variant=service_reference_variant,
            response_id=response_id(rid),
            gbcs=data,
        )
    )
    return _finish(root, schema, signer)


def _header(root: _Element, at: dt.datetime, response: RequestId | None, code: str) -> None:
    header = etree.SubElement(root, _sr("Header"))
    if response is not None:
        etree.SubElement(header, _sr("ResponseID")).text = str(response)
    etree.SubElement(header, _sr("ResponseCode")).text = code
    utc = at.astimezone(dt.UTC)
    etree.SubElement(header, _sr("ResponseDateTime")).text = (
        utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    )


def _document() -> _Element:
    root = etree.Element(_sr("Response"), nsmap={"sr": SR_NS})
    root.set("schemaVersion", "5.4")
    return root


def device_alert(
    data: bytes,
    *,
    at: dt.datetime,
    service_reference_for: Callable[[int], str | None] | None = None,
    instruction: tuple[int, int] = (1, 1),
    schema: DuisSchema | None = None,
    signer: XmlSigner | None = None,
) -> _Element:
    """A device alert as DUIS.

    An ordinary alert: ``DeviceAlertMessage`` with response code ``I0``. A future-dated outcome
    (8F66/8F67): a ``ResponseMessage`` with ``FutureDatedDeviceAlertMessage`` for the service
    request whose command it reports on, which ``service_reference_for`` names from that
    command's message code; ``instruction`` is (InstructionNumber, TotalCommandInstructions).
    """
    message = decode_device_message(data)
    if message.cra_flag is not CraFlag.ALERT:
        raise ResponseMappingError("device_alert takes a device alert (CRA flag 3)")
    if message.alert_code is None:
        raise ResponseMappingError("the alert code could not be read from the payload")
    root = _document()
    payload = base64.b64encode(data).decode("ascii")
    alert_text = f"{message.alert_code:04X}"
    if message.alert_code in FUTURE_DATED_ALERTS:
        if message.reported_message_code is None or message.reported_counter is None:
            raise ResponseMappingError("future-dated alert without the command it reports on")
        variant = (
            service_reference_for(message.reported_message_code) if service_reference_for else None
        )
        if variant is None:
            raise ResponseMappingError(
                f"no service request for message code 0x{message.reported_message_code:04X}"
            )
        rid = RequestId(
            Eui64(message.originator), Eui64(message.recipient), message.reported_counter
        )
        _header(root, at, rid, ResponseCode.SUCCESS.value)
        body = etree.SubElement(root, _sr("Body"))
        response = etree.SubElement(body, _sr("ResponseMessage"))
        etree.SubElement(response, _sr("ServiceReference")).text = service_reference_of(variant)
        etree.SubElement(response, _sr("ServiceReferenceVariant")).text = variant
        fd = etree.SubElement(response, _sr("FutureDatedDeviceAlertMessage"))
        etree.SubElement(fd, _sr("FutureDatedAlertCode")).text = alert_text
        etree.SubElement(fd, _sr("GBCSPayload")).text = payload
        etree.SubElement(fd, _sr("InstructionNumber")).text = str(instruction[0])
        etree.SubElement(fd, _sr("TotalCommandInstructions")).text = str(instruction[1])
        return _finish(root, schema, signer)
    rid = RequestId(Eui64(message.originator), Eui64(message.recipient), message.counter)
    _header(root, at, rid, ResponseCode.SUCCESS.value)
    body = etree.SubElement(root, _sr("Body"))
    alert = etree.SubElement(body, _sr("DeviceAlertMessage"))
    etree.SubElement(alert, _sr("AlertCode")).text = alert_text
    etree.SubElement(alert, _sr("GBCSPayload")).text = payload
    return _finish(root, schema, signer)


def to_duis(
    data: bytes,
    *,
    at: dt.datetime,
    service_reference_for: Callable[[int], str | None],
    schema: DuisSchema | None = None,
    signer: XmlSigner | None = None,
) -> _Element:
    """Any device response or alert to its DUIS message; the service request of a response is
    found from its message code with ``service_reference_for``."""
    message = decode_device_message(data)
    if message.cra_flag is CraFlag.ALERT:
        return device_alert(
            data, at=at, service_reference_for=service_reference_for, schema=schema, signer=signer
        )
    variant = service_reference_for(message.message_code)
    if variant is None:
        raise ResponseMappingError(
            f"no service request for message code 0x{message.message_code:04X}"
        )
    return response_message(
        data, service_reference_variant=variant, at=at, schema=schema, signer=signer
    )


def dcc_alert(
    code: str,
    alert: _Element,
    *,
    at: dt.datetime,
    schema: DuisSchema | None = None,
    signer: XmlSigner | None = None,
) -> _Element:
    """A DCC alert (``DCCAlertMessage``): ``code`` is the DCC alert code (e.g. ``N12``) and
    ``alert`` the ``DCCAlert`` choice element (e.g. ``CommandFailure``)."""
    root = _document()
    _header(root, at, None, ResponseCode.SUCCESS.value)
    body = etree.SubElement(root, _sr("Body"))
    message = etree.SubElement(body, _sr("DCCAlertMessage"))
    etree.SubElement(message, _sr("DCCAlertCode")).text = code
    etree.SubElement(message, _sr("DCCAlert")).append(alert)
    return _finish(root, schema, signer)
