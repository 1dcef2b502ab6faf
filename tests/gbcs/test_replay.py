"""Receiving commands as a device: MAC first, signature when critical, replay rules."""

from __future__ import annotations

import pytest

from smarthydra.gbcs.catalogue import Catalogue
from smarthydra.gbcs.envelope import CraFlag
from smarthydra.gbcs.errors import BadField, GbcsDecodeError, MacInvalid, SignatureMissing
from smarthydra.gbcs.replay import (
    CounterKey,
    CounterKind,
    ReplayGuard,
    ReplayRejected,
    SignatureInvalid,
    receive_command,
)
from smarthydra.gbcs.rtds import KeyKind, RtdsKeystore, read_hex_file
from smarthydra.gbcs.usecase import (
    MessageKeys,
    build_command,
    decode_command,
    decode_use_case_message,
    rtds_keys,
)
from tests.conftest import conformance_path


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(conformance_path("gbcs"))


@pytest.fixture(scope="module")
def keystore() -> RtdsKeystore:
    return RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))


def _rtds(folder: str, name: str) -> bytes:
    return read_hex_file(conformance_path("gbcs", "rtds-4.5.0", folder, name))


def test_critical_command_accepted_once(keystore: RtdsKeystore, catalogue: Catalogue) -> None:
    wire = _rtds("7.2_ECS43", "ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX")
    command = decode_command(wire)
    keys = rtds_keys(
        keystore, cra_flag=CraFlag.COMMAND, originator=command.originator,
        recipient=command.recipient,
    )  # fmt: skip
    ds = keystore.public_key(command.originator, KeyKind.DS)
    guard = ReplayGuard()
    accepted = receive_command(
        wire, mac_z=keys.mac_z, guard=guard, signer_public_key=ds, catalogue=catalogue
    )
    assert accepted.use_case_code == "ECS43"
    assert guard.counters[CounterKey(command.originator, CounterKind.COMMAND)] == command.counter
    with pytest.raises(ReplayRejected, match="not greater"):
        receive_command(
            wire, mac_z=keys.mac_z, guard=guard, signer_public_key=ds, catalogue=catalogue
        )
    # A tampered byte fails the MAC before anything is parsed or recorded.
    tampered = bytearray(wire)
    tampered[40] ^= 1
    fresh = ReplayGuard()
    with pytest.raises(MacInvalid, match="before parsing"):
        receive_command(bytes(tampered), mac_z=keys.mac_z, guard=fresh, signer_public_key=ds)
    assert not fresh.counters
    with pytest.raises(SignatureMissing):
        receive_command(wire, mac_z=keys.mac_z, guard=ReplayGuard(), catalogue=catalogue)
    other = keystore.public_key(bytes.fromhex("90B3D51F30020000"), KeyKind.DS)
    with pytest.raises(SignatureInvalid):
        receive_command(
            wire, mac_z=keys.mac_z, guard=ReplayGuard(), signer_public_key=other,
            catalogue=catalogue,
        )  # fmt: skip


def test_unsigned_critical_command_is_refused(keystore: RtdsKeystore, catalogue: Catalogue) -> None:
    wire = _rtds("7.2_ECS43", "ECS43_7.2_SUCCESS_COMMAND_GBCS.HEX")
    command = decode_command(wire, catalogue=catalogue)
    keys = rtds_keys(
        keystore, cra_flag=CraFlag.COMMAND, originator=command.originator,
        recipient=command.recipient,
    )  # fmt: skip
    # A compromised DCC MACs an unsigned ECS43 (by message code, bypassing the builder's check).
    forged = build_command(
        0x0050, command.params, originator=command.originator, recipient=command.recipient,
        counter=command.counter + 1, keys=MessageKeys(mac_z=keys.mac_z),
    )  # fmt: skip
    with pytest.raises(SignatureMissing, match="critical"):
        receive_command(forged, mac_z=keys.mac_z, guard=ReplayGuard(), catalogue=catalogue)


def test_supplementary_counter_and_non_critical(
    keystore: RtdsKeystore, catalogue: Catalogue
) -> None:
    wire = _rtds("8.11_CCS01", "CCS01_8.11_SUCCESS_COMMAND_GBCS.HEX")
    command = decode_command(wire)
    assert command.params.supplementary_remote_party_counter is not None
    keys = rtds_keys(
        keystore, cra_flag=CraFlag.COMMAND, originator=command.originator,
        recipient=command.recipient,
    )  # fmt: skip
    guard = ReplayGuard()
    party = command.params.supplementary_remote_party_id
    assert party is not None
    guard.counters[CounterKey(party, CounterKind.SUPPLEMENTARY)] = (
        command.params.supplementary_remote_party_counter
    )
    with pytest.raises(ReplayRejected, match="supplementary"):
        receive_command(wire, mac_z=keys.mac_z, guard=guard, catalogue=catalogue)
    assert CounterKey(command.originator, CounterKind.COMMAND) not in guard.counters
    guard = ReplayGuard()
    receive_command(wire, mac_z=keys.mac_z, guard=guard, catalogue=catalogue)
    assert len(guard.counters) == 2


def test_responses_and_alerts() -> None:
    response = decode_use_case_message(_rtds("7.2_ECS43", "ECS43_7.2_SUCCESS_RESPONSE_GBCS.HEX"))
    guard = ReplayGuard()
    with pytest.raises(ReplayRejected, match="no outstanding"):
        guard.accept_response(response)
    guard.expect_response(response.originator, response.counter)
    guard.accept_response(response)
    with pytest.raises(ReplayRejected):
        guard.accept_response(response)
    alert = decode_use_case_message(_rtds("NA_GCA-DLMS", "GCA-DLMS_NA_8F30_ALERT_GBCS.HEX"))
    guard.accept_alert(alert)
    with pytest.raises(ReplayRejected, match="alert counter"):
        guard.accept_alert(alert)


def test_not_a_command(keystore: RtdsKeystore) -> None:
    response = _rtds("7.2_ECS43", "ECS43_7.2_SUCCESS_RESPONSE_GBCS.HEX")
    with pytest.raises(BadField, match="not a response"):
        receive_command(response, mac_z=None, guard=ReplayGuard())
    with pytest.raises(GbcsDecodeError):
        receive_command(b"\xdd\x00", mac_z=bytes(32), guard=ReplayGuard())


def test_every_rtds_command_is_accepted_by_its_device(
    keystore: RtdsKeystore, catalogue: Catalogue
) -> None:
    root = conformance_path("gbcs", "rtds-4.5.0")
    accepted = 0
    for path in sorted(root.rglob("*_COMMAND_GBCS.HEX")):
        if "PRECOMMAND" in path.name:
            continue
        wire = read_hex_file(path)
        command = decode_command(wire)
        keys = rtds_keys(
            keystore, cra_flag=CraFlag.COMMAND, originator=command.originator,
            recipient=command.recipient,
        )  # fmt: skip
        if command.mac is not None and keys.mac_z is None:
            continue  # PCS01/PCS02: MAC'd device to device, no published key
        receive_command(
            wire,
            mac_z=keys.mac_z if command.mac is not None else None,
            guard=ReplayGuard(),
            signer_public_key=keystore.public_key(command.originator, KeyKind.DS),
            catalogue=catalogue,
        )
        accepted += 1
    assert accepted == 499
