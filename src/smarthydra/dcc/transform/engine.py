"""The transform itself: DUIS body + target device -> GBCS general-signing APDU.

Deterministic: the same request and target always give the same bytes. The RequestID
counter is the GBCS originator counter (and the low 24 bits of the xDLMS invoke-id), the
RequestID originator the GBCS originator, the target the recipient.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, replace

from smarthydra.dcc.transform.compiled import RequestPatch, compile_request
from smarthydra.dcc.transform.device import NO_INVENTORY, Inventory, Target
from smarthydra.dcc.transform.payload import (
    Codec,
    HeaderField,
    LeafPath,
    PayloadTemplate,
    TemplateError,
    byte_ranges,
    load_templates,
    write_strings,
)
from smarthydra.dcc.transform.spec import (
    CANCEL_COSEM,
    CANCEL_ZIGBEE,
    CANCELLATION_DATETIME,
    IMMEDIATE_COSEM,
    IMMEDIATE_ZIGBEE,
    NOW,
    Choice,
    Conversion,
    InventoryCodec,
    Mapping,
    Slot,
    TransformError,
    UseCaseSpec,
    cosem_bytes,
    decimal_to_integer,
    parse_xs_datetime,
    to_bytes,
    to_bytes_values,
    to_leaf,
    xs_datetime,
)
from smarthydra.dcc.transform.table import MAPPINGS
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, ServiceRequest
from smarthydra.eui import Eui64, InvalidEui64
from smarthydra.gbcs.axdr import Data, DataType
from smarthydra.gbcs.builder import build_precommand
from smarthydra.gbcs.envelope import GeneralSigning
from smarthydra.gbcs.errors import GbcsError

INVOKE_ID_FLAGS_MASK = 0xFF000000
URP_CREDENTIALS = "KAPublicSecurityCredentials"


@dataclass(frozen=True)
class DccOriginator:
    """For use cases the DCC sends in its own name (to a comms hub, or on a user's behalf):
    the DCC's EUI and the counter it uses; the user's RequestID then goes in the
    supplementary remote party fields."""

    eui: bytes
    counter: int


@dataclass(frozen=True)
class Transformed:
    """The GBCS for a request: a command to MAC (non-critical) or a pre-command to sign."""

    service_reference_variant: str
    use_case: str
    critical: bool
    general_signing: GeneralSigning
    # The DCC signs this command with its own digital-signing key before the ACB MACs it.
    dcc_signed: bool = False


def body_value(parameters: dict[str, object], path: str) -> str | None:
    """The text at a ``/``-separated path of the generic DUIS body, or None if absent.

    ``A+B`` is the xs:dateTime at A plus the number of seconds at B (e.g. the end of a clock
    synchronisation's validity interval: CurrentDateTime + TolerancePeriod).
    """
    if "+" in path:
        base, _, plus = path.partition("+")
        moment, seconds = body_value(parameters, base), body_value(parameters, plus)
        if moment is None or seconds is None:
            return None
        try:
            delta = dt.timedelta(seconds=int(seconds))
        except (ValueError, OverflowError):
            raise TransformError(f"{plus} {seconds!r} is not a number of seconds") from None
        try:
            return xs_datetime(parse_xs_datetime(moment) + delta)
        except OverflowError:
            raise TransformError(f"{path} is out of range") from None
    node = _walk(parameters, path)
    if node is None:
        return None
    if isinstance(node, dict):
        if "#text" in node:  # an element with attributes and text
            return str(node["#text"])
        return "" if not node else None  # an empty element (NoType) reads as ""
    if isinstance(node, list):
        raise TransformError(f"{path} repeats where one value is expected")
    return str(node)


def _walk(parameters: dict[str, object], path: str) -> object | None:
    """The node at a ``/``-separated path. A step ``Name[N]`` picks the repeat of ``Name``
    whose ``index`` attribute is N (DUIS numbers repeated elements that way); ``Name[K=V]``
    the repeat whose child (or ``@attribute``) K is V (e.g. ``Phase``)."""
    node: object = parameters
    for step in path.split("/"):
        name, _, selector = step.partition("[")
        if not isinstance(node, dict) or name not in node:
            return None
        node = node[name]
        if selector:
            key, _, wanted = selector.rstrip("]").rpartition("=")
            key = key or "@index"
            items = node if isinstance(node, list) else [node]
            node = next(
                (i for i in items if isinstance(i, dict) and str(i.get(key)).strip() == wanted),
                None,
            )
            if node is None:
                return None
    return node


def body_has(parameters: dict[str, object], path: str) -> bool:
    """Whether the DUIS body has an element at a ``/``-separated path."""
    return _walk(parameters, path) is not None


def condition_holds(parameters: dict[str, object], condition: str) -> bool:
    """``@present:PATH`` (the element is there) or ``PATH=value`` (it has that value)."""
    if condition.startswith("@present:"):
        return body_has(parameters, condition.removeprefix("@present:"))
    path, _, wanted = condition.partition("=")
    value = body_value(parameters, path)
    return value is not None and value.strip() == wanted


OTHER_DEVICE = "OtherDeviceID"


def other_device_type(request: ServiceRequest, inventory: Inventory) -> str | None:
    """The inventory's type of the request's OtherDeviceID (a join's other device)."""
    text = body_value(request.parameters, OTHER_DEVICE)
    if text is None:
        return None
    try:
        eui = Eui64.parse(text)
    except InvalidEui64 as exc:
        raise TransformError(f"{OTHER_DEVICE}: {exc}") from None
    device = inventory.device(eui.value)
    if device is None:
        raise TransformError(
            f"{OTHER_DEVICE} {eui.hyphenated} is not in the inventory", ResponseCode.UNKNOWN_DEVICE
        )
    return device.device_type.value


def _fact(key: str, request: ServiceRequest, target: Target, inventory: Inventory) -> str | None:
    if key == "@other-device-type":
        return other_device_type(request, inventory)
    if key == "@role":
        return request.role
    if key == "@esme-variant":
        return target.esme_variant.value
    if key == "@device-type":
        return target.device_type.value
    if key == "@legacy":
        return "yes" if target.legacy else "no"
    if key == "@execution":
        when = request.execution_datetime
        if when is None:
            return "immediate"
        return "cancellation" if when == CANCELLATION_DATETIME else "future"
    if key.startswith("@present:"):
        return "yes" if body_has(request.parameters, key[9:]) else "no"
    return body_value(request.parameters, key)


def resolve(
    mapping: Mapping,
    request: ServiceRequest,
    target: Target,
    inventory: Inventory = NO_INVENTORY,
) -> UseCaseSpec:
    while isinstance(mapping, Choice):
        value = _fact(mapping.duis, request, target, inventory)
        chosen = mapping.options.get(value or "") or mapping.options.get("*")
        if chosen is None:
            raise TransformError(
                f"service request {request.service_reference_variant}: {mapping.duis}="
                f"{value!r} is not supported for a {target.device_type.value}"
            )
        mapping = chosen
    return mapping


def mapping_for(variant: str, target: Target) -> Mapping:
    by_device = MAPPINGS.get(variant)
    if by_device is None:
        raise TransformError(f"service request variant {variant} has no GBCS transform")
    mapping = by_device.get(target.device_type)
    if mapping is None:
        raise TransformError(
            f"service request variant {variant} does not apply to a {target.device_type.value}"
        )
    return mapping


def _execution_bytes(when: dt.datetime | None) -> bytes:
    if when is None:
        return IMMEDIATE_COSEM
    if when == CANCELLATION_DATETIME:
        return CANCEL_COSEM
    return cosem_bytes(when)


def _slot_text(slot: Slot, request: ServiceRequest, issued_at: dt.datetime | None) -> str:
    if slot.duis == NOW:
        if issued_at is None:
            raise TransformError(
                f"{request.service_reference_variant}: the time of issue is needed"
            )
        return xs_datetime(issued_at)
    if slot.duis.startswith("="):  # a constant (its terms carry the DUIS values)
        return slot.duis[1:]
    if ".." in slot.duis:
        first, _, last = slot.duis.partition("..")
        start, end = body_value(request.parameters, first), body_value(request.parameters, last)
        if start is None or end is None:
            raise TransformError(f"{request.service_reference_variant}: {slot.duis} is missing")
        seconds = (parse_xs_datetime(end) - parse_xs_datetime(start)).total_seconds()
        if seconds < 0:
            raise TransformError(f"{first} is after {last}")
        return str(int(seconds) // slot.scale + 1)
    text = body_value(request.parameters, slot.duis)
    if (
        text is None
        and slot.default is not None
        and (not slot.default_means or body_has(request.parameters, slot.default_means))
    ):
        return slot.default
    if text is None:
        raise TransformError(f"{request.service_reference_variant}: {slot.duis} is missing")
    return text


WHOLE_PAYLOAD: LeafPath = ("payload",)


def _build_bytes(
    template: PayloadTemplate,
    spec: UseCaseSpec,
    request: ServiceRequest,
    issued_at: dt.datetime | None,
) -> bytes:
    """GBZ and DER payloads: fixed-position fields written over the template's bytes."""
    if spec.slots and spec.slots[0].at == WHOLE_PAYLOAD:
        slot = spec.slots[0]
        return to_bytes(slot.conversion, _slot_text(slot, request, issued_at), 0, slot.duis)
    payload = bytearray(template.payload)
    strings: dict[tuple[int, int], dict[int, bytes]] = {}
    for slot in spec.slots:
        text = _slot_text(slot, request, issued_at)
        if (slot.offset or slot.terms or slot.scale != 1) and ".." not in slot.duis:
            text = str(_packed(slot, text, request.parameters))
        if slot.at[0] == "zstr":  # ("zstr", component, offset, index): variable length
            _, component, offset, index = slot.at
            assert isinstance(component, int) and isinstance(offset, int)
            assert isinstance(index, int)
            try:
                raw = text.encode("ascii")
            except UnicodeEncodeError:
                raise TransformError(f"{slot.duis}: {text!r} is not printable ASCII") from None
            strings.setdefault((component, offset), {})[index] = raw
            continue
        if slot.decimals:
            text = decimal_to_integer(text, slot.decimals, slot.duis)
        for offset, size in byte_ranges(template.payload, slot.at):
            if slot.conversion is Conversion.VALUES:
                raw = to_bytes_values(text, size, slot.duis, slot.values)
            else:
                raw = to_bytes(slot.conversion, text, size, slot.duis)
            payload[offset : offset + size] = raw
    when = request.execution_datetime
    for path in spec.execution:
        for offset, size in byte_ranges(template.payload, path):
            if when is None:
                value = IMMEDIATE_ZIGBEE
            elif when == CANCELLATION_DATETIME:
                value = CANCEL_ZIGBEE
            else:
                value = to_bytes(
                    Conversion.SECONDS_2000_LE, xs_datetime(when), size, "ExecutionDateTime"
                )
            payload[offset : offset + size] = value
    result = bytes(payload)
    for (component, offset), by_index in sorted(strings.items(), reverse=True):
        result = write_strings(result, component, offset, [by_index[i] for i in sorted(by_index)])
    return result


def _repeats(parameters: dict[str, object], path: str) -> list[dict[str, object]]:
    """The repeats of the element at ``path`` (none if absent)."""
    node = _walk(parameters, path)
    if node is None or node == "":
        return []
    items = node if isinstance(node, list) else [node]
    if not all(isinstance(i, dict) for i in items):
        raise TransformError(f"{path}: each repeat must have child elements")
    return [i for i in items if isinstance(i, dict)]


def _packed(slot: Slot, text: str, parameters: dict[str, object]) -> int:
    """The integer a UINT slot writes: its value scaled and offset, plus weighted terms."""
    try:
        total = int(text) * slot.scale + slot.offset
    except ValueError:
        raise TransformError(f"{slot.duis}: {text!r} is not an integer") from None
    for path, weight in slot.terms:
        if path.startswith("@present:") or "=" in path:
            total += weight if condition_holds(parameters, path) else 0
            continue
        value = body_value(parameters, path)
        if value is None or not (value.strip().isascii() and value.strip().isdigit()):
            raise TransformError(f"{path} is missing or not a non-negative integer")
        total += int(value) * weight
    return total


def _set_obis_byte(patch: RequestPatch, at: LeafPath, text: str, what: str) -> None:
    _, index, position = at
    assert isinstance(index, int) and isinstance(position, int)
    value = int(text)
    if not 0 <= value <= 0xFF:
        raise TransformError(f"{what}: {value} does not fit a logical name byte")
    patch.set_name_byte(index, position, value)


def build_payload(
    template: PayloadTemplate,
    spec: UseCaseSpec,
    request: ServiceRequest,
    counter: int,
    issued_at: dt.datetime | None = None,
    inventory: Inventory = NO_INVENTORY,
) -> bytes:
    rid = request.request_id
    if isinstance(spec.codec, InventoryCodec):
        return spec.codec.build_counted(request.parameters, inventory, counter)
    if spec.codec is not None:
        return spec.codec.build(request.parameters, request.execution_datetime, counter, issued_at)
    if template.codec is not Codec.XDLMS:
        return _build_bytes(template, spec, request, issued_at)
    try:
        patch = RequestPatch(compile_request(template.payload))
    except GbcsError as exc:
        raise TemplateError(f"template payload does not encode: {exc}") from None
    patch.invoke_id = (patch.invoke_id & INVOKE_ID_FLAGS_MASK) | (counter & 0xFFFFFF)
    for header in template.header_leaves:
        if header.field is HeaderField.ORIGINATOR:
            value = rid.originator.value  # the user, even when the DCC sends in its own name
        elif header.field is HeaderField.RECIPIENT:
            value = rid.target.value
        else:
            prefix = patch.get_leaf(header.at).value
            assert isinstance(prefix, bytes)
            value = prefix[:1] + counter.to_bytes(8, "big")
        patch.set_leaf(header.at, Data(DataType.OCTET_STRING, value))
    dropped = {i for cond, i in spec.optional if not condition_holds(request.parameters, cond)}
    for slot in spec.slots:
        if slot.at[0] == "data" and slot.at[1] in dropped:
            continue  # its request specification is not sent
        text = _slot_text(slot, request, issued_at)
        if slot.decimals:
            text = decimal_to_integer(text, slot.decimals, slot.duis)
        if slot.scale != 1 or slot.offset or slot.terms:
            text = str(_packed(slot, text, request.parameters))
        if slot.at[0] == "obis":  # a byte of a request specification's logical name
            _set_obis_byte(patch, slot.at, text, slot.duis)
            continue
        leaf = patch.get_leaf(slot.at)
        patch.set_leaf(slot.at, to_leaf(slot.conversion, text, leaf, slot.duis, slot.values))
    for listed in spec.lists:
        repeats = _repeats(request.parameters, listed.duis)
        items = [listed.item.to_data(r, i, request.parameters) for i, r in enumerate(repeats)]
        patch.set_leaf(listed.at, Data(DataType.ARRAY, items))
    for built in spec.leaves:
        patch.set_leaf(built.at, built.codec.build(request.parameters))
    for array in spec.arrays:
        patch.set_leaf(array.at, Data(DataType.ARRAY, array.codec.build(request.parameters)))
    if spec.execution:
        when = _execution_bytes(request.execution_datetime)
        for path in spec.execution:
            patch.set_leaf(path, Data(DataType.OCTET_STRING, when))
    if spec.optional:
        keep = [i for i in range(len(patch.template.specifications)) if i not in dropped]
        if not keep:
            raise TransformError(
                f"{request.service_reference_variant}: the request asks for nothing to be done"
            )
        patch.keep_specifications(keep)
    return patch.encode()


def _urp_certificate(request: ServiceRequest) -> bytes | None:
    text = body_value(request.parameters, URP_CREDENTIALS)
    if text is None:
        return None
    try:
        certificate = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise TransformError(f"{URP_CREDENTIALS} is not base64") from None
    if len(certificate) <= 8:
        raise TransformError(f"{URP_CREDENTIALS} is not a certificate")
    return certificate


def check_command_variant(critical: bool, command_variant: CommandVariant) -> None:
    if critical and command_variant is not CommandVariant.CRITICAL_TRANSFORM:
        raise TransformError(
            f"a critical service request is transformed with command variant 4, not "
            f"{int(command_variant)}",
            ResponseCode.INVALID_COMMAND_VARIANT,
        )
    if not critical and not 1 <= int(command_variant) <= 3:
        raise TransformError(
            f"a non-critical service request takes command variant 1-3, not {int(command_variant)}",
            ResponseCode.INVALID_COMMAND_VARIANT,
        )


def transform(
    request: ServiceRequest,
    target: Target,
    *,
    check_variant: bool = True,
    precommand_signature_field: bool = False,
    dcc: DccOriginator | None = None,
    issued_at: dt.datetime | None = None,
    inventory: Inventory = NO_INVENTORY,
) -> Transformed:
    """The GBCS for ``request`` to ``target``.

    A critical use case yields the pre-command (ending at the payload, as the RTDS
    PRECOMMAND files and DUIS PreCommand do, unless ``precommand_signature_field``); a
    non-critical one the unsigned command (signature length 00) for the ACB to MAC.
    ``inventory`` gives what the command carries about other devices (joins, device logs).
    """
    variant = request.service_reference_variant
    spec = resolve(mapping_for(variant, target), request, target, inventory)
    template = load_templates().get(spec.template_key)
    if template is None:
        raise TransformError(f"use case {spec.use_case} ({variant}) has no payload template")
    if check_variant:
        check_command_variant(template.critical, request.command_variant)
    rid = request.request_id
    other = template.other()
    originator, counter = rid.originator.value, rid.counter
    certificate = _urp_certificate(request)
    if certificate is not None:
        # An unknown remote party's request: the DCC sends it, naming the party and the
        # key-agreement certificate the device is to encrypt the response to.
        if dcc is None:
            raise TransformError(
                f"{variant} with KAPublicSecurityCredentials is sent by the DCC: its EUI and "
                "counter are needed"
            )
        originator, counter = dcc.eui, dcc.counter
        other = replace(
            other,
            supplementary_remote_party_id=rid.originator.value,
            supplementary_remote_party_counter=rid.counter,
            supplementary_originator_counter=None,
            supplementary_remote_party_ka_certificate=certificate,
        )
    elif spec.dcc_originates:
        if dcc is None:
            raise TransformError(
                f"use case {spec.use_case} is sent by the DCC in its own name: its EUI and "
                "counter are needed"
            )
        originator, counter = dcc.eui, dcc.counter
    elif other.supplementary_remote_party_id is not None:
        # Sent by the DCC in its own name; the user and its counter ride as the
        # supplementary remote party.
        if dcc is None:
            raise TransformError(
                f"use case {spec.use_case} is sent by the DCC: its EUI and counter are needed"
            )
        originator, counter = dcc.eui, dcc.counter
        other = replace(
            other,
            supplementary_remote_party_id=rid.originator.value,
            supplementary_remote_party_counter=rid.counter,
        )
    try:
        payload = build_payload(template, spec, request, counter, issued_at, inventory)
        general_signing = build_precommand(
            originator=originator,
            recipient=rid.target.value,
            counter=counter,
            message_code=template.message_code,
            payload=payload,
            other_information=other,
            signature_field=(not template.critical) or precommand_signature_field,
        )
    except (TemplateError, GbcsError) as exc:
        raise TransformError(f"{variant} ({spec.use_case}): {exc}") from None
    return Transformed(
        variant, spec.use_case, template.critical, general_signing, template.dcc_signed
    )
