"""Device responses built from the command and the device's own values, against the RTDS."""

from __future__ import annotations

from pathlib import Path

import pytest

from smarthydra.gbcs import security
from smarthydra.gbcs.axdr import Data, DataType
from smarthydra.gbcs.envelope import decode_message
from smarthydra.gbcs.errors import GbcsEncodeError
from smarthydra.gbcs.responses import access_response, data_protection_response
from smarthydra.gbcs.rtds import RtdsKeystore, read_hex_file
from smarthydra.gbcs.usecase import (
    MessageKeys,
    UseCaseError,
    build_response,
    decode_use_case_message,
)
from smarthydra.gbcs.xdlms import AccessRequest, AccessResponse, decode_xdlms
from tests.conftest import CONFORMANCE, conformance_path

RTDS = CONFORMANCE / "gbcs" / "rtds-4.5.0"


def _pairs() -> list[tuple[Path, Path]]:
    """(command, success response) pairs whose xDLMS response is sensitive."""
    if not RTDS.is_dir():
        return []
    out = []
    for response in sorted(RTDS.rglob("*SUCCESS_RESPONSE_GBCS.HEX")):
        command = response.with_name(response.name.replace("_RESPONSE_", "_COMMAND_"))
        payload = decode_message(read_hex_file(response)).payload
        if command.is_file() and payload[:1] == b"\xda" and b"\x31\x00\x00\x00\x00" in payload:
            out.append((command, response))
    return out


PAIRS = _pairs()


@pytest.fixture(scope="module")
def keys() -> RtdsKeystore:
    return RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))


def test_pairs_found() -> None:
    conformance_path("gbcs", "rtds-4.5.0")
    assert len(PAIRS) >= 12


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p[1].name)
def test_sensitive_response_from_command_and_values(
    pair: tuple[Path, Path], keys: RtdsKeystore
) -> None:
    command_path, response_path = pair
    expected = read_hex_file(response_path)
    gs = decode_message(expected).general_signing
    originator, _, party = security.encryption_parameters(gs)
    z_enc = keys.shared_secret(originator, party)
    z_mac = keys.shared_secret(gs.originator, gs.recipient)
    assert z_enc is not None and z_mac is not None
    # What the meter knows: the command, and its own register values (the plaintexts).
    plaintexts = decode_use_case_message(expected, encryption_z=z_enc).params.sensitive
    request = decode_xdlms(decode_message(read_hex_file(command_path)).payload)
    assert isinstance(request, AccessRequest)
    params = data_protection_response(
        request, device=gs.originator, recipient=gs.recipient, plaintexts=plaintexts
    )
    other = gs.other_information
    params = type(params)(
        payload=params.payload,
        sensitive=params.sensitive,
        date_time=gs.date_time,  # when the device answered (some RTDS responses carry it)
        supplementary_remote_party_id=other.supplementary_remote_party_id,
        supplementary_remote_party_counter=other.supplementary_remote_party_counter,
        supplementary_originator_counter=other.supplementary_originator_counter,
    )
    built = build_response(
        gs.message_code,
        params,
        device=gs.originator,
        recipient=gs.recipient,
        counter=gs.originator_counter,
        keys=MessageKeys(mac_z=z_mac, encryption_z=z_enc),
    )
    assert built == expected


def test_access_response_and_errors() -> None:
    request = decode_xdlms(bytes.fromhex("D9200003E8000103000900000A006AFF0101120034"))
    assert isinstance(request, AccessRequest)
    response = access_response(request, [], [0])
    assert isinstance(response, AccessResponse)
    assert response.encode().hex() == "da200003e800000001" + "0300"
    with pytest.raises(GbcsEncodeError, match="results for"):
        access_response(request, [], [0, 0])
    with pytest.raises(UseCaseError, match="data-protection"):
        data_protection_response(request, device=bytes(8), recipient=bytes(8), plaintexts=[b"\x00"])
    with pytest.raises(GbcsEncodeError, match="8 bytes"):
        data_protection_response(request, device=b"x", recipient=bytes(8), plaintexts=[])
    assert Data(DataType.NULL_DATA).encode() == b"\x00"
