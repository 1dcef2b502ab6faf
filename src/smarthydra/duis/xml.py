"""DUIS XML: service requests and responses as the DUIS 5.4 schema defines them.

Parsing is in three steps, each with its own error: the bytes must be well-formed XML without a
DTD (:class:`MalformedXml`), the document must validate against ``duis-5.4.xsd``
(:class:`SchemaInvalid`), and the body must be the element DUIS defines for the header's service
reference variant (:class:`BodyMismatch`). Signature checking (:mod:`smarthydra.duis.xmldsig`)
sits between the schema and the body, so nothing is read from an unauthenticated body.

The header is read the same way for every service request variant; the body becomes a generic
``parameters`` dict (element names to text, nested dicts for children, lists for repeats), and a
signed pre-command (command variants 5-7) yields its GBCS bytes.

The schema imports ``MMC Schema V5.4.xsd`` (the SMETS1 ``ResponseAndAlert`` namespace), which
is not published with it; a stand-in with open content types for the three types DUIS uses from
it is supplied here, so SMETS1 responses are validated only loosely. Nothing here produces them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from lxml.etree import _Element

from smarthydra.duis.codes import DccAlertCode, RefusalReason, ResponseCode
from smarthydra.duis.request import (
    CommandVariant,
    RequestId,
    RequestIdError,
    ServiceRequest,
    SignedPreCommand,
)
from smarthydra.eui import Eui64

SR_NS = "http://www.dccinterface.co.uk/ServiceUserGateway"
RA_NS = "http://www.dccinterface.co.uk/ResponseAndAlert"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_FILE = "duis-5.4.xsd"
SCHEMA_VERSION = "5.4"
GBCS_VERSION = "4.3"  # the GBCS version DUIS 5.4 is aligned with (its header says so)
DEFAULT_MAX_BYTES = 1 << 20  # far above any DUIS request; bounds memory per request


# Service reference variant -> the Body element DUIS 5.4 defines for it (from the schema's
# Body choice and the service request names; 129 variants).
BODY_ELEMENTS: dict[str, str] = {
    "1.1.1": "UpdateImportTariffPrimaryElement",
    "1.1.2": "UpdateImportTariffSecondaryElement",
    "1.2.1": "UpdatePricePrimaryElement",
    "1.2.2": "UpdatePriceSecondaryElement",
    "1.5": "UpdateMeterBalance",
    "1.6": "UpdatePaymentMode",
    "1.7": "ResetTariffBlockCounterMatrix",
    "2.1": "UpdatePrepayConfiguration",
    "2.2": "TopUpDevice",
    "2.3": "UpdateDebt",
    "2.5": "ActivateEmergencyCredit",
    "3.1": "DisplayMessage",
    "3.2": "RestrictAccessForChangeOfTenancy",
    "3.3": "ClearEventLog",
    "3.4": "UpdateSupplierName",
    "3.5": "DisablePrivacyPIN",
    "4.1.1": "ReadInstantaneousImportRegisters",
    "4.1.2": "ReadInstantaneousImportTOUMatrices",
    "4.1.3": "ReadInstantaneousImportTOUWithBlocksMatrices",
    "4.1.4": "ReadInstantaneousImportBlockCounters",
    "4.2": "ReadInstantaneousExportRegisters",
    "4.3": "ReadInstantaneousPrepayValues",
    "4.4.2": "RetrieveCoMOrTariffTriggeredBillingDataLog",
    "4.4.3": "RetrieveBillingCalendarTriggeredBillingDataLog",
    "4.4.4": "RetrieveBillingDataLogDebtPayments",
    "4.4.5": "RetrieveBillingDataLogPrepaymentCredits",
    "4.6.1": "RetrieveImportDailyReadLog",
    "4.6.2": "RetrieveExportDailyReadLog",
    "4.8.1": "ReadActiveImportProfileData",
    "4.8.2": "ReadReactiveImportProfileData",
    "4.8.3": "ReadExportProfileData",
    "4.10": "ReadNetworkData",
    "4.11.1": "ReadTariffPrimaryElement",
    "4.11.2": "ReadTariffSecondaryElement",
    "4.12.1": "ReadMaximumDemandImportRegisters",
    "4.12.2": "ReadMaximumDemandExportRegisters",
    "4.13": "ReadPrepaymentConfiguration",
    "4.14": "ReadPrepaymentDailyReadLog",
    "4.15": "ReadLoadLimitData",
    "4.16": "ReadActivePowerImport",
    "4.17": "RetrieveDailyConsumptionLog",
    "4.18": "ReadMeterBalance",
    "5.1": "CreateSchedule",
    "5.2": "ReadSchedule",
    "5.3": "DeleteSchedule",
    "6.2.1": "ReadDeviceConfigurationVoltage",
    "6.2.2": "ReadDeviceConfigurationRandomisation",
    "6.2.3": "ReadDeviceConfigurationBillingCalendar",
    "6.2.4": "ReadDeviceConfigurationIdentityExcMPxN",
    "6.2.5": "ReadDeviceConfigurationInstantaneousPowerThresholds",
    "6.2.7": "ReadDeviceConfigurationMPxN",
    "6.2.8": "ReadDeviceConfigurationGas",
    "6.2.9": "ReadDeviceConfigurationPaymentMode",
    "6.2.10": "ReadDeviceConfigurationEventAndAlertBehaviours",
    "6.4.1": "UpdateDeviceConfigurationLoadLimitingGeneralSettings",
    "6.4.2": "UpdateDeviceConfigurationLoadLimitingCounterReset",
    "6.5": "UpdateDeviceConfigurationVoltage",
    "6.6": "UpdateDeviceConfigurationGasConversion",
    "6.7": "UpdateDeviceConfigurationGasFlow",
    "6.8": "UpdateDeviceConfigurationBillingCalendar",
    "6.11": "SynchroniseClock",
    "6.12": "UpdateDeviceConfigurationInstantaneousPowerThreshold",
    "6.13": "ReadEventOrSecurityLog",
    "6.14.1": "UpdateDeviceConfigurationALCDescriptions",
    "6.14.2": "UpdateDeviceConfigurationALCScheduler",
    "6.14.3": "UpdateDeviceConfigurationAuxiliaryControllerScheduler",
    "6.15.1": "UpdateSecurityCredentialsKRP",
    "6.15.2": "UpdateSecurityCredentialsDevice",
    "6.17": "IssueSecurityCredentials",
    "6.18.1": "SetMaximumDemandConfigurableTimePeriod",
    "6.18.2": "ResetMaximumDemandRegisters",
    "6.20.1": "SetDeviceConfigurationImportMPxN",
    "6.20.2": "SetDeviceConfigurationExportMPAN",
    "6.21": "RequestHandoverOfDCCControlledDevice",
    "6.22": "ConfigureAlertBehaviour",
    "6.23": "UpdateSecurityCredentialsCoS",
    "6.24.1": "RetrieveDeviceSecurityCredentialsKRP",
    "6.24.2": "RetrieveDeviceSecurityCredentialsDevice",
    "6.25": "SetElectricitySupplyTamperState",
    "6.26": "UpdateDeviceConfigurationDailyResettingOfTariffBlockCounterMatrix",
    "6.27": "UpdateDeviceConfigurationRMSVoltageCounterReset",
    "6.28": "SetCHFSubGHzConfiguration",
    "6.29": "RequestCHFSubGHzChannelScan",
    "6.30": "ReadCHFSubGHzConfiguration",
    "6.31": "ReadCHFSubGHzChannel",
    "6.32": "ReadCHFSubGHzChannelLog",
    "7.1": "EnableSupply",
    "7.2": "DisableSupply",
    "7.3": "ArmSupply",
    "7.4": "ReadSupplyStatus",
    "7.5": "ActivateAuxiliaryLoad",
    "7.6": "DeactivateAuxiliaryLoad",
    "7.7": "ReadALCSData",
    "7.8": "ResetAuxiliaryLoad",
    "7.9": "AddAuxiliaryLoadToBoostButton",
    "7.10": "RemoveAuxiliaryLoadFromBoostButton",
    "7.11": "ReadBoostButtonDetails",
    "7.12": "SetRandomisedOffsetLimit",
    "7.13": "SetAuxiliaryControllerState",
    "7.14": "ReadAuxiliaryControllerConfigurationData",
    "7.15": "ReadAuxiliaryControllerOperationalData",
    "7.16": "LimitAPCLevel",
    "8.1.1": "CommissionDeviceSynchroniseClock",
    "8.2": "ReadInventory",
    "8.3": "DecommissionDevice",
    "8.4": "UpdateInventory",
    "8.5": "ServiceOptOut",
    "8.6": "ServiceOptIn",
    "8.7.1": "JoinServiceCritical",
    "8.7.2": "JoinServiceNonCritical",
    "8.8.1": "UnjoinServiceCritical",
    "8.8.2": "UnjoinServiceNonCritical",
    "8.9": "ReadDeviceLog",
    "8.11": "UpdateHANDeviceLog",
    "8.12.1": "RestoreHANDeviceLog",
    "8.12.2": "RestoreGPFDeviceLog",
    "8.13": "ReturnLocalCommandResponse",
    "8.14.1": "CHFInstallSuccessSMWAN",
    "8.14.2": "CHFInstallSuccessNoSMWAN",
    "8.14.3": "CHFFaultReturn",
    "8.14.4": "CHFNoFaultReturn",
    "9.1": "RequestCustomerIdentificationNumber",
    "11.1": "UpdateFirmware",
    "11.2": "ReadFirmwareVersion",
    "11.3": "ActivateFirmware",
    "11.4": "UpdatePPMIDFirmware",
    "12.1": "RequestWANMatrix",
    "12.2": "DevicePrenotification",
    "14.1": "RecordNetworkDataGAS",
}
SIGNED_PRECOMMAND = "SignedPreCommand"


# --- errors -------------------------------------------------------------------------------------


class DuisXmlError(Exception):
    """A DUIS document the DCC cannot accept; ``code`` is the DUIS response code for it.

    ``request_id`` is set when the header could be read, so the answer can name the request.
    """

    code: ResponseCode = ResponseCode.INVALID_REQUEST
    reason: RefusalReason = RefusalReason.INVALID_DOCUMENT

    def __init__(self, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class MalformedXml(DuisXmlError):
    """Not well-formed XML, too large, or carrying a DTD."""

    reason = RefusalReason.MALFORMED_XML


class SchemaInvalid(DuisXmlError):
    """Well-formed, but not valid against the DUIS schema."""

    reason = RefusalReason.SCHEMA_INVALID


class BodyMismatch(DuisXmlError):
    """The body element is not the one DUIS defines for the header's service request variant."""

    reason = RefusalReason.BODY_MISMATCH


class SchemaNotFound(Exception):
    """The DUIS schema files are not where they were looked for."""


# --- parsing and the schema ----------------------------------------------------------------------

_MMC_STANDIN = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{RA_NS}"
    elementFormDefault="qualified">
  <xs:complexType name="HeaderType"><xs:sequence>
    <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence><xs:anyAttribute processContents="lax"/></xs:complexType>
  <xs:complexType name="ResponsePayload"><xs:sequence>
    <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence><xs:anyAttribute processContents="lax"/></xs:complexType>
  <xs:complexType name="DeviceAlertMessageType"><xs:sequence>
    <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence><xs:anyAttribute processContents="lax"/></xs:complexType>
</xs:schema>
"""


_MMC_STANDIN_NAME = "smarthydra-mmc-standin.xsd"


class _SchemaResolver(etree.Resolver):  # type: ignore[misc]  # lxml is untyped
    """Serves the unpublished MMC schema stand-in; everything else comes from local files."""

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        if system_url.endswith(_MMC_STANDIN_NAME):
            return self.resolve_string(_MMC_STANDIN, context)
        return None


def _document_parser() -> etree.XMLParser:
    # No DTDs, no entity expansion, no network: DUIS documents never need them.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


_PARSER = _document_parser()


@dataclass(frozen=True)
class DuisSchema:
    """The compiled DUIS 5.4 schema."""

    schema: etree.XMLSchema = field(repr=False)
    path: Path

    @classmethod
    def load(cls, directory: Path) -> DuisSchema:
        return _load_schema(directory.resolve())

    def validate(self, root: _Element) -> None:
        """Raise :class:`SchemaInvalid` naming the first error, with the RequestID if readable."""
        if self.schema.validate(root):
            return
        error = self.schema.error_log.filter_from_errors()[0]
        raise SchemaInvalid(
            f"not valid against {SCHEMA_FILE}: line {error.line}: {error.message}",
            peek_request_id(root),
        )


@functools.lru_cache(maxsize=4)
def _load_schema(directory: Path) -> DuisSchema:
    path = directory / SCHEMA_FILE
    if not path.exists() or not (directory / "xmldsig-core-schema.xsd").exists():
        raise SchemaNotFound(f"DUIS schema not found: {path} and xmldsig-core-schema.xsd beside it")
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_SchemaResolver())
    document = etree.parse(str(path), parser)
    # libxml2 skips an import whose file is missing without asking resolvers, so the
    # import of the MMC schema is pointed at a name only the resolver answers.
    for imported in document.getroot().iter("{http://www.w3.org/2001/XMLSchema}import"):
        if imported.get("namespace") == RA_NS:
            imported.set("schemaLocation", _MMC_STANDIN_NAME)
    return DuisSchema(etree.XMLSchema(document), path)


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> _Element:
    """Bytes to an element tree, refusing oversize input, DTDs and anything not well-formed."""
    if len(data) > max_bytes:
        raise MalformedXml(f"message is {len(data)} bytes, the limit is {max_bytes}")
    if not data.strip():
        raise MalformedXml("empty message")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedXml(f"not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise MalformedXml(f"cannot parse: {exc}") from None
    if root is None:
        raise MalformedXml("no document element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise MalformedXml("a DTD is not allowed in a DUIS message")
    return root


# --- reading -------------------------------------------------------------------------------------


def _sr(name: str) -> str:
    return f"{{{SR_NS}}}{name}"


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _text(parent: _Element, name: str) -> str | None:
    found = parent.find(_sr(name))
    return None if found is None or found.text is None else found.text.strip()


def peek_service_reference_variant(root: _Element) -> str | None:
    """The header's service reference variant if it is one DUIS defines (for error answers)."""
    header = root.find(_sr("Header"))
    text = _text(header, "ServiceReferenceVariant") if header is not None else None
    return text if text in BODY_ELEMENTS else None


def peek_request_id(root: _Element) -> RequestId | None:
    """The RequestID if the header has a readable one, for naming a request in an error."""
    header = root.find(_sr("Header"))
    text = _text(header, "RequestID") if header is not None else None
    if text is None:
        return None
    try:
        return RequestId.parse(text)
    except RequestIdError:
        return None


def element_to_value(element: _Element) -> object:
    """Generic body decoding: text for a leaf, dict of children (lists for repeats) otherwise.

    Attributes appear under ``@name`` keys; an empty element is an empty dict.
    """
    children = [c for c in element if isinstance(c.tag, str)]
    attributes = {f"@{_local(k)}": v for k, v in element.attrib.items()}
    if not children:
        text = (element.text or "").strip()
        if attributes:
            return {**attributes, "#text": text} if text else attributes
        return text if text else {}
    result: dict[str, object] = dict(attributes)
    for child in children:
        key = _local(child.tag)
        value = element_to_value(child)
        if key in result:
            existing = result[key]
            if isinstance(existing, list):
                existing.append(value)
            else:
                result[key] = [existing, value]
        else:
            result[key] = value
    return result


def _datetime(text: str, what: str, request_id: RequestId | None) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SchemaInvalid(f"{what} {text!r} is not an xs:dateTime", request_id) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class DuisRequest:
    """A DUIS request as read from XML, before the DCC decides anything."""

    request_id: RequestId
    command_variant: CommandVariant
    service_reference: str
    service_reference_variant: str
    body_element: str
    parameters: dict[str, object]
    execution_datetime: dt.datetime | None = None
    gbcs: bytes | None = None  # the signed pre-command, for command variants 5-7

    @property
    def is_signed_precommand(self) -> bool:
        return self.body_element == SIGNED_PRECOMMAND

    def to_service_request(self, sender: Eui64, role: str) -> ServiceRequest:
        return ServiceRequest(
            self.request_id,
            sender,
            role,
            self.service_reference_variant,
            self.command_variant,
            dict(self.parameters),
            self.execution_datetime,
        )

    def to_signed_precommand(self, sender: Eui64, role: str) -> SignedPreCommand:
        if self.gbcs is None:
            raise BodyMismatch("the request does not carry a signed pre-command", self.request_id)
        return SignedPreCommand(
            self.request_id,
            sender,
            role,
            self.service_reference_variant,
            self.command_variant,
            self.gbcs,
        )


def read_request(root: _Element) -> DuisRequest:
    """Read a schema-valid ``sr:Request``: the header for any variant, the body generically."""
    if root.tag != _sr("Request"):
        raise SchemaInvalid(f"expected sr:Request, got {_local(root.tag)}")
    header = root.find(_sr("Header"))
    body = root.find(_sr("Body"))
    if header is None or body is None:
        raise SchemaInvalid("a Request needs a Header and a Body")
    request_id_text = _text(header, "RequestID") or ""
    try:
        request_id = RequestId.parse(request_id_text)
    except RequestIdError as exc:
        raise SchemaInvalid(str(exc)) from None
    cv_text = _text(header, "CommandVariant") or ""
    try:
        command_variant = CommandVariant(int(cv_text))
    except ValueError:
        raise SchemaInvalid(f"CommandVariant {cv_text!r} is not 1-8", request_id) from None
    reference = _text(header, "ServiceReference") or ""
    variant = _text(header, "ServiceReferenceVariant") or ""
    if not (variant == reference or variant.startswith(reference + ".")):
        raise BodyMismatch(
            f"ServiceReferenceVariant {variant} is not a variant of ServiceReference {reference}",
            request_id,
        )
    elements = [c for c in body if isinstance(c.tag, str)]
    if len(elements) != 1 or not str(elements[0].tag).startswith(f"{{{SR_NS}}}"):
        raise SchemaInvalid("the Body must hold exactly one DUIS element", request_id)
    element = elements[0]
    name = _local(element.tag)

    gbcs = None
    if name == SIGNED_PRECOMMAND:
        if not command_variant.carries_signed_precommand:
            raise BodyMismatch(
                f"a SignedPreCommand body needs command variant 5-7, not {int(command_variant)}",
                request_id,
            )
        payload = _text(element, "GBCSPayload") or ""
        try:
            gbcs = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise SchemaInvalid("GBCSPayload is not base64", request_id) from None
    else:
        expected = BODY_ELEMENTS.get(variant)
        if expected is None:
            raise BodyMismatch(f"unknown service reference variant {variant}", request_id)
        if name != expected:
            raise BodyMismatch(
                f"body element {name} does not belong to service reference variant {variant} "
                f"(expected {expected})",
                request_id,
            )
        if command_variant.carries_signed_precommand:
            raise BodyMismatch(
                f"command variant {int(command_variant)} needs a SignedPreCommand body, not {name}",
                request_id,
            )
    parameters = element_to_value(element)
    execution = _text(element, "ExecutionDateTime")
    return DuisRequest(
        request_id=request_id,
        command_variant=command_variant,
        service_reference=reference,
        service_reference_variant=variant,
        body_element=name,
        parameters=parameters if isinstance(parameters, dict) else {"#text": parameters},
        execution_datetime=_datetime(execution, "ExecutionDateTime", request_id)
        if execution
        else None,
        gbcs=gbcs,
    )


# --- building ------------------------------------------------------------------------------------


def service_reference_of(variant: str) -> str:
    """``4.1.1`` -> ``4.1``; a two-part variant is its own reference (``7.2``)."""
    parts = variant.split(".")
    return ".".join(parts[:2])


def _value_to_elements(parent: _Element, name: str, value: object) -> None:
    if isinstance(value, list):
        for item in value:
            _value_to_elements(parent, name, item)
        return
    child = etree.SubElement(parent, _sr(name))
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("@"):
                child.set(key[1:], str(item))
            elif key == "#text":
                child.text = str(item)
            else:
                _value_to_elements(child, key, item)
    else:
        child.text = str(value)


def _root(tag: str) -> _Element:
    root = etree.Element(_sr(tag), nsmap={"sr": SR_NS})
    root.set("schemaVersion", SCHEMA_VERSION)
    return root


def _header(root: _Element, request_id: RequestId, cv: CommandVariant, variant: str) -> None:
    header = etree.SubElement(root, _sr("Header"))
    etree.SubElement(header, _sr("RequestID")).text = str(request_id)
    etree.SubElement(header, _sr("CommandVariant")).text = str(int(cv))
    etree.SubElement(header, _sr("ServiceReference")).text = service_reference_of(variant)
    etree.SubElement(header, _sr("ServiceReferenceVariant")).text = variant


def build_request(
    request_id: RequestId,
    command_variant: CommandVariant,
    service_reference_variant: str,
    parameters: dict[str, object] | None = None,
    *,
    body_element: str | None = None,
) -> _Element:
    """An unsigned ``sr:Request`` whose body holds ``parameters`` (the inverse of
    :func:`element_to_value`). Sign it with :class:`~smarthydra.duis.xmldsig.XmlSigner`."""
    name = body_element or BODY_ELEMENTS.get(service_reference_variant)
    if name is None:
        raise BodyMismatch(f"unknown service reference variant {service_reference_variant}")
    root = _root("Request")
    _header(root, request_id, command_variant, service_reference_variant)
    body = etree.SubElement(root, _sr("Body"))
    _value_to_elements(body, name, parameters or {})
    return root


def build_signed_precommand_request(
    request_id: RequestId,
    command_variant: CommandVariant,
    service_reference_variant: str,
    gbcs: bytes,
    execution_datetime: dt.datetime | None = None,
) -> _Element:
    """Command variant 5-7: the signed pre-command goes back in a ``SignedPreCommand`` body."""
    if not command_variant.carries_signed_precommand:
        raise BodyMismatch(
            f"command variant {int(command_variant)} does not carry a signed pre-command"
        )
    parameters: dict[str, object] = {}
    if execution_datetime is not None:
        parameters["ExecutionDateTime"] = _xs_datetime(execution_datetime)
    parameters["GBCSPayload"] = base64.b64encode(gbcs).decode("ascii")
    return build_request(
        request_id,
        command_variant,
        service_reference_variant,
        parameters,
        body_element=SIGNED_PRECOMMAND,
    )


def _xs_datetime(when: dt.datetime) -> str:
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def response_id(request_id: RequestId) -> RequestId:
    """A device's response is identified target:originator:counter (as DCC Boxed does)."""
    return RequestId(request_id.target, request_id.originator, request_id.counter)


@dataclass(frozen=True)
class DuisResponse:
    """A DUIS ``sr:Response`` as data: what :func:`build_response` writes and
    :func:`read_response` reads."""

    request_id: RequestId | None
    code: ResponseCode | str
    at: dt.datetime
    service_reference_variant: str | None = None
    service_reference: str | None = None
    response_id: RequestId | None = None
    gbcs: bytes | None = None  # GBCSPayload: a device's response, or a command to deliver locally
    precommand: bytes | None = None  # PreCommand/GBCSPayload for command variant 4
    gbcs_version: str | None = None
    dcc_alert: DccAlertCode | str | None = None
    quarantine_ticket: int | None = None
    # Which anomaly detection rule a quarantine alert reports (a QuarantinedRequest choice).
    breach: str = "ADUserThresholdBreach"
    # A non-device service's answer: (element of the ResponseMessage choice, its content in
    # the form element_to_value reads), e.g. ("DSPInventory", {"Device": [...]}).
    body: tuple[str, object] | None = None

    @property
    def code_text(self) -> str:
        return self.code.value if isinstance(self.code, ResponseCode) else self.code


def build_response(response: DuisResponse) -> _Element:
    """An unsigned ``sr:Response``: a ResponseMessage (acknowledgement, error, device response
    or pre-command) or, for a quarantined request, a DCC alert message (AD1)."""
    root = _root("Response")
    header = etree.SubElement(root, _sr("Header"))
    if response.request_id is not None:
        etree.SubElement(header, _sr("RequestID")).text = str(response.request_id)
    if response.response_id is not None:
        etree.SubElement(header, _sr("ResponseID")).text = str(response.response_id)
    etree.SubElement(header, _sr("ResponseCode")).text = response.code_text
    etree.SubElement(header, _sr("ResponseDateTime")).text = _xs_datetime(response.at)
    body = etree.SubElement(root, _sr("Body"))
    if response.dcc_alert is not None:
        if response.request_id is None or response.quarantine_ticket is None:
            raise ValueError("a quarantine alert needs the RequestID and the quarantine ticket")
        alert_code = (
            response.dcc_alert.value
            if isinstance(response.dcc_alert, DccAlertCode)
            else response.dcc_alert
        )
        message = etree.SubElement(body, _sr("DCCAlertMessage"))
        etree.SubElement(message, _sr("DCCAlertCode")).text = alert_code
        alert = etree.SubElement(message, _sr("DCCAlert"))
        breach = etree.SubElement(
            etree.SubElement(alert, _sr("QuarantinedRequest")), _sr(response.breach)
        )
        etree.SubElement(breach, _sr("RequestID")).text = str(response.request_id)
        etree.SubElement(breach, _sr("QuarantineEventRef")).text = str(response.quarantine_ticket)
        return root
    message = etree.SubElement(body, _sr("ResponseMessage"))
    variant = response.service_reference_variant
    if variant is None:
        raise ValueError("a ResponseMessage needs the service reference variant")
    etree.SubElement(message, _sr("ServiceReference")).text = (
        response.service_reference or service_reference_of(variant)
    )
    etree.SubElement(message, _sr("ServiceReferenceVariant")).text = variant
    if response.precommand is not None:
        precommand = etree.SubElement(message, _sr("PreCommand"))
        etree.SubElement(precommand, _sr("GBCSVersion")).text = (
            response.gbcs_version or GBCS_VERSION
        )
        etree.SubElement(precommand, _sr("GBCSPayload")).text = base64.b64encode(
            response.precommand
        ).decode("ascii")
    elif response.gbcs is not None:
        etree.SubElement(message, _sr("GBCSPayload")).text = base64.b64encode(response.gbcs).decode(
            "ascii"
        )
    elif response.body is not None:
        _value_to_elements(message, response.body[0], response.body[1])
    return root


def _c14n_text(text: str) -> str:
    """Character data as canonical XML writes it (C14N 1.0, section 5)."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")
    )


def canonical_response(response: DuisResponse) -> bytes | None:
    """The inclusive C14N 1.0 octets of :func:`build_response`'s document, written directly,
    for the plain ResponseMessage every request is answered with (acknowledgement, error,
    device response, pre-command); None for an alert or a non-device body, which only the
    tree builder writes. The DCC signs and sends these octets as they are (canonical XML is
    a well-formed document), so the busiest answer costs no element tree at all; the tests
    hold this equal to canonicalising :func:`build_response`'s tree.
    """
    if response.dcc_alert is not None or response.body is not None:
        return None
    variant = response.service_reference_variant
    if variant is None:
        raise ValueError("a ResponseMessage needs the service reference variant")
    parts = [f'<sr:Response xmlns:sr="{SR_NS}" schemaVersion="{SCHEMA_VERSION}"><sr:Header>']
    if response.request_id is not None:
        parts.append(f"<sr:RequestID>{_c14n_text(str(response.request_id))}</sr:RequestID>")
    if response.response_id is not None:
        parts.append(f"<sr:ResponseID>{_c14n_text(str(response.response_id))}</sr:ResponseID>")
    parts.append(f"<sr:ResponseCode>{_c14n_text(response.code_text)}</sr:ResponseCode>")
    parts.append(f"<sr:ResponseDateTime>{_xs_datetime(response.at)}</sr:ResponseDateTime>")
    parts.append("</sr:Header><sr:Body><sr:ResponseMessage>")
    reference = response.service_reference or service_reference_of(variant)
    parts.append(f"<sr:ServiceReference>{_c14n_text(reference)}</sr:ServiceReference>")
    parts.append(f"<sr:ServiceReferenceVariant>{_c14n_text(variant)}</sr:ServiceReferenceVariant>")
    if response.precommand is not None:
        version = _c14n_text(response.gbcs_version or GBCS_VERSION)
        payload = base64.b64encode(response.precommand).decode("ascii")
        parts.append(
            f"<sr:PreCommand><sr:GBCSVersion>{version}</sr:GBCSVersion>"
            f"<sr:GBCSPayload>{payload}</sr:GBCSPayload></sr:PreCommand>"
        )
    elif response.gbcs is not None:
        payload = base64.b64encode(response.gbcs).decode("ascii")
        parts.append(f"<sr:GBCSPayload>{payload}</sr:GBCSPayload>")
    parts.append("</sr:ResponseMessage></sr:Body></sr:Response>")
    return "".join(parts).encode("utf-8")


def read_response(root: _Element) -> DuisResponse:
    """Read a schema-valid ``sr:Response`` (from the DCC, or the published examples)."""
    if root.tag != _sr("Response"):
        raise SchemaInvalid(f"expected sr:Response, got {_local(root.tag)}")
    header = root.find(_sr("Header"))
    body = root.find(_sr("Body"))
    if header is None or body is None:
        raise SchemaInvalid("a Response needs a Header and a Body")

    def rid(name: str) -> RequestId | None:
        text = _text(header, name)
        try:
            return RequestId.parse(text) if text else None
        except RequestIdError as exc:
            raise SchemaInvalid(str(exc)) from None

    request_id = rid("RequestID")
    code_text = _text(header, "ResponseCode") or ""
    try:
        code: ResponseCode | str = ResponseCode(code_text)
    except ValueError:
        code = code_text  # a valid XSD code this DCC never produces (e.g. E65)
    at = _datetime(_text(header, "ResponseDateTime") or "", "ResponseDateTime", request_id)

    def b64(text: str | None) -> bytes | None:
        if text is None:
            return None
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise SchemaInvalid("GBCSPayload is not base64", request_id) from None

    message = body.find(_sr("ResponseMessage"))
    if message is not None:
        precommand = message.find(_sr("PreCommand"))
        return DuisResponse(
            request_id=request_id,
            code=code,
            at=at,
            service_reference=_text(message, "ServiceReference"),
            service_reference_variant=_text(message, "ServiceReferenceVariant"),
            response_id=rid("ResponseID"),
            gbcs=b64(_text(message, "GBCSPayload")),
            precommand=b64(_text(precommand, "GBCSPayload")) if precommand is not None else None,
            gbcs_version=_text(precommand, "GBCSVersion") if precommand is not None else None,
        )
    alert = body.find(_sr("DCCAlertMessage"))
    if alert is not None:
        alert_text = _text(alert, "DCCAlertCode") or ""
        try:
            alert_code: DccAlertCode | str = DccAlertCode(alert_text)
        except ValueError:
            alert_code = alert_text
        ticket_text = None
        for ref in alert.iter(_sr("QuarantineEventRef")):
            ticket_text = (ref.text or "").strip()
        return DuisResponse(
            request_id=request_id,
            code=code,
            at=at,
            response_id=rid("ResponseID"),
            dcc_alert=alert_code,
            quarantine_ticket=int(ticket_text) if ticket_text and (ticket_text.isascii() and ticket_text.isdigit()) else None,
        )
    return DuisResponse(request_id=request_id, code=code, at=at, response_id=rid("ResponseID"))
