"""Locating the encrypted (sensitive) blocks inside a payload, by its grammar.

GBCS carries a sensitive value as ``31 00000000 || ciphertext || tag(12)``:

- in xDLMS payloads (ESME and comms hub) as the octet-string that immediately follows a
  *protection-parameters* array inside a structure: the response to an invocation of the
  data-protection object (class 30) is ``structure { protection-parameters, protected
  attributes }``, and a protected alert (data-notification) carries the same pair after its
  alert code and date-time. Protection-parameters is ``array of structure { protection-type
  enum, protection-options structure }``;
- in GBZ payloads (gas) as the ciphered information of each component whose control field
  has the encryption bit (:mod:`smarthydra.gbcs.gbz`).

Both are found by decoding the payload, never by searching for byte patterns. DER payloads
(security use cases) carry no sensitive blocks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace

from smarthydra.gbcs.axdr import Data, DataType
from smarthydra.gbcs.der import DerNode
from smarthydra.gbcs.errors import BadField, GbcsDecodeError, GbcsEncodeError, UnexpectedTag
from smarthydra.gbcs.gbz import EncryptedZcl, GbzPayload, decode_gbz, is_gbz
from smarthydra.gbcs.payload_json import Payload
from smarthydra.gbcs.security import SENSITIVE_HEADER, SENSITIVE_TAG_SIZE
from smarthydra.gbcs.xdlms import AccessRequest, AccessResponse, DataNotification, decode_xdlms

XDLMS_TAGS = frozenset({0xD9, 0xDA, 0x0F})
_MIN_BLOCK = len(SENSITIVE_HEADER) + SENSITIVE_TAG_SIZE


def is_protection_parameters(data: Data) -> bool:
    """``array of structure { enum, structure }``: the data-protection parameters."""
    items = data.value
    if data.type is not DataType.ARRAY or not isinstance(items, list) or not items:
        return False
    for item in items:
        pair = item.value
        if (
            item.type is not DataType.STRUCTURE
            or not isinstance(pair, list)
            or len(pair) != 2
            or pair[0].type is not DataType.ENUM
            or pair[1].type is not DataType.STRUCTURE
        ):
            return False
    return True


def _protected_positions(data: Data) -> Iterator[tuple[list[Data], int]]:
    """(structure items, index) of every protected octet-string, depth first, in order."""
    items = data.value
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if (
            data.type is DataType.STRUCTURE
            and index > 0
            and item.type is DataType.OCTET_STRING
            and is_protection_parameters(items[index - 1])
        ):
            yield items, index
        else:
            yield from _protected_positions(item)


def _check_block(block: bytes) -> bytes:
    if block[: len(SENSITIVE_HEADER)] != SENSITIVE_HEADER:
        raise UnexpectedTag(
            f"protected attribute starts {block[:5].hex()}, expected 3100000000 (security header)"
        )
    if len(block) < _MIN_BLOCK:
        raise BadField(f"protected attribute of {len(block)} bytes cannot hold a GCM tag")
    return block[len(SENSITIVE_HEADER) :]


def _xdlms_roots(apdu: AccessRequest | AccessResponse | DataNotification) -> list[Data]:
    if isinstance(apdu, DataNotification):
        return [apdu.body]
    return list(apdu.data)


def protected_blocks(payload: Payload) -> list[bytes]:
    """The ``ciphertext || tag`` of every sensitive block in a typed payload, in order."""
    if isinstance(payload, GbzPayload):
        return payload.protected_blocks()
    if isinstance(payload, DerNode):
        return []
    blocks: list[bytes] = []
    for root in _xdlms_roots(payload):
        for items, index in _protected_positions(root):
            value = items[index].value
            assert isinstance(value, bytes)
            blocks.append(_check_block(value))
    return blocks


def _replace_in_data(data: Data, blocks: Iterator[bytes]) -> Data:
    items = data.value
    if not isinstance(items, list):
        return data
    out: list[Data] = []
    for index, item in enumerate(items):
        if (
            data.type is DataType.STRUCTURE
            and index > 0
            and item.type is DataType.OCTET_STRING
            and is_protection_parameters(items[index - 1])
        ):
            try:
                out.append(Data(DataType.OCTET_STRING, SENSITIVE_HEADER + next(blocks)))
            except StopIteration:
                raise GbcsEncodeError("fewer sensitive values than protected slots") from None
        else:
            out.append(_replace_in_data(item, blocks))
    return Data(data.type, out)


def replace_protected_blocks(payload: Payload, blocks: list[bytes]) -> Payload:
    """``payload`` with its protected slots (in order) carrying ``blocks`` (ciphertext || tag).

    The number of blocks must equal the number of protected slots.
    """
    feed = iter(blocks)
    result: Payload
    if isinstance(payload, GbzPayload):
        components = []
        for component in payload.components:
            if isinstance(component.body, EncryptedZcl):
                try:
                    body = replace(component.body, ciphertext_and_tag=next(feed))
                except StopIteration:
                    raise GbcsEncodeError(
                        "fewer sensitive values than encrypted components"
                    ) from None
                component = replace(component, body=body)
            components.append(component)
        result = replace(payload, components=tuple(components))
    elif isinstance(payload, DerNode):
        result = payload
    elif isinstance(payload, DataNotification):
        result = replace(payload, body=_replace_in_data(payload.body, feed))
    else:
        result = replace(payload, data=[_replace_in_data(d, feed) for d in payload.data])
    if next(feed, None) is not None:
        raise GbcsEncodeError("more sensitive values than protected slots in the payload")
    return result


def find_protected_blocks(payload: bytes, *, alert: bool | None = None) -> list[bytes]:
    """The ``ciphertext || tag`` of each sensitive block in the wire ``payload``, in order.

    The payload is decoded by its grammar (xDLMS or GBZ); a malformed one raises
    :class:`~smarthydra.gbcs.errors.GbcsDecodeError`. For GBZ, ``alert`` True or False selects
    the alert / non-alert grammar; ``None`` (CRA flag unknown) tries both.
    """
    if payload and payload[0] in XDLMS_TAGS:
        return protected_blocks(decode_xdlms(payload))
    if is_gbz(payload):
        if alert is not None:
            return decode_gbz(payload, alert=alert).protected_blocks()
        for as_alert in (False, True):
            with contextlib.suppress(GbcsDecodeError):
                return decode_gbz(payload, alert=as_alert).protected_blocks()
        return decode_gbz(payload, alert=True).protected_blocks()
    return []
