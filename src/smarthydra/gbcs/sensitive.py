"""Locating the encrypted (sensitive) blocks inside a response or alert payload.

GBCS carries a sensitive value as ``31 00000000 || ciphertext || tag(12)``:

- in xDLMS payloads as the octet-string (``09 <BER length>``) that follows the protection
  parameters of a protected attribute;
- in GBZ payloads after a ZCL command whose GBZ control field has the encryption bit, as a
  2-byte length then the block.

GBZ payloads are located by their grammar (:mod:`smarthydra.gbcs.gbz`): the encrypted
components. For xDLMS payloads, until the attribute-level codec knows which attributes are
protected, blocks are found by their framing: a length prefix (an ``09`` octet-string or a GBZ 2-byte length) whose value exactly spans a
block starting ``31 00000000`` and long enough for a tag. The AES-GCM tag then proves each
candidate: a false match cannot decrypt.
"""

from __future__ import annotations

import contextlib

from smarthydra.gbcs.errors import GbcsDecodeError
from smarthydra.gbcs.gbz import decode_gbz, is_gbz
from smarthydra.gbcs.security import SENSITIVE_HEADER, SENSITIVE_TAG_SIZE

_MIN_BLOCK = len(SENSITIVE_HEADER) + SENSITIVE_TAG_SIZE


def _ber_length_before(payload: bytes, at: int) -> tuple[int, int] | None:
    """(length, start of the ``09`` tag) when an octet-string header ends exactly at ``at``."""
    if at >= 2 and payload[at - 2] == 0x09 and payload[at - 1] < 0x80:
        return payload[at - 1], at - 2
    if at >= 3 and payload[at - 3] == 0x09 and payload[at - 2] == 0x81 and payload[at - 1] >= 0x80:
        return payload[at - 1], at - 3
    if at >= 4 and payload[at - 4] == 0x09 and payload[at - 3] == 0x82:
        return int.from_bytes(payload[at - 2 : at], "big"), at - 4
    return None


def find_protected_blocks(payload: bytes, *, alert: bool | None = None) -> list[bytes]:
    """The ``ciphertext || tag`` of each sensitive block found in ``payload``, in order.

    A GBZ payload is decoded by its grammar and its encrypted components returned: with
    ``alert`` True or False as an alert / non-alert payload (a malformed one raises
    :class:`~smarthydra.gbcs.errors.GbcsDecodeError`); with ``alert=None`` (caller does not
    know the CRA flag) both grammars are tried, then the framing search.
    """
    if is_gbz(payload):
        if alert is not None:
            return decode_gbz(payload, alert=alert).protected_blocks()
        for as_alert in (False, True):
            with contextlib.suppress(GbcsDecodeError):
                return decode_gbz(payload, alert=as_alert).protected_blocks()
    return _find_by_framing(payload)


def _find_by_framing(payload: bytes) -> list[bytes]:
    blocks: list[bytes] = []
    search_from = 0
    while True:
        at = payload.find(SENSITIVE_HEADER, search_from)
        if at < 0:
            return blocks
        search_from = at + 1
        lengths: list[int] = []
        dlms = _ber_length_before(payload, at)
        if dlms is not None:
            lengths.append(dlms[0])
        if at >= 2:
            lengths.append(int.from_bytes(payload[at - 2 : at], "big"))
        for length in lengths:
            if length >= _MIN_BLOCK and at + length <= len(payload):
                blocks.append(payload[at + len(SENSITIVE_HEADER) : at + length])
                search_from = at + length
                break
