"""The prepayment interface device (PPMID) on the full DUIS path: SRV 11.2 (CS08, read the
PPMID's firmware version) and SRV 11.3 (CS06, activate firmware the hub distributed) as DUIS
XML -> the DataCommsCompany (transform for the PPMID the inventory names, ACB MAC) -> WAN ->
Hydra hub (device log, HAN link security) -> PPMID -> GBCS response -> DUIS ResponseMessage,
checked (MAC or signature with the PPMID's keys) and compared with the RTDS response.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.dcc.acb import AccessControlBroker
from smarthydra.gbcs.builder import build_precommand
from smarthydra.gbcs.der import decode_der
from smarthydra.premises.der_cases import FirmwareImage
from smarthydra.premises.esme import DropReason
from smarthydra.premises.hub import DeviceKind
from smarthydra.premises.ppmid import Ppmid
from smarthydra.premises.usecases import BY_NAME
from smarthydra.sim.home import DuisRoundTripError, add_ppmid
from smarthydra.sim.world import World, build_world
from tests.conftest import CONFORMANCE, conformance_path
from tests.premises.duis_helpers import DuisOutcome, DuisPath
from tests.premises.shapes import payload_shape, rtds_message, shapes_match


@pytest.fixture(scope="module")
def rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[World, Ppmid]]:
    conformance_path("duis", "service-request-matrix.json")
    world = build_world(homes=1, seed=41, conformance=CONFORMANCE)
    yield world, add_ppmid(world, world.home(0))


@pytest.fixture(scope="module")
def duis(setup: tuple[World, Ppmid]) -> DuisPath:
    return DuisPath.load(setup[0], conformance_path("duis"))


def _like_rtds(outcome: DuisOutcome, rtds: Path, folder: str, name: str) -> None:
    theirs = rtds_message(rtds / folder, name)
    ours = outcome.message
    assert shapes_match(payload_shape(ours), payload_shape(theirs)), (
        payload_shape(ours), payload_shape(theirs))
    assert ours.message_code == theirs.message_code


def test_cs08_reads_the_ppmid_firmware_version(setup: tuple[World, Ppmid], duis: DuisPath,
                                               rtds: Path) -> None:
    world, ppmid = setup
    before = ppmid.commands_executed
    outcome = duis.send("11.2", ppmid.eui)
    _like_rtds(outcome, rtds, "11.2_CS08", "CS08_11.2_SUCCESS_RESPONSE_GBCS.HEX")
    version, result = decode_der(outcome.message.payload).children
    assert version.content == ppmid.firmware.version and result.as_int() == 0
    assert outcome.message.originator == ppmid.eui.value
    assert ppmid.commands_executed == before + 1
    # it went through the hub's device log and HAN link, not around it
    assert world.home(0).hub.in_device_log(ppmid.eui)


def test_cs06_activates_firmware_on_the_ppmid(setup: tuple[World, Ppmid], duis: DuisPath,
                                              rtds: Path) -> None:
    world, ppmid = setup
    hub = world.home(0).hub
    image = FirmwareImage(bytes.fromhex("0789abcd"), b"ppmid firmware" * 80)
    # not distributed yet: the PPMID answers, signed, with a failure and keeps its version
    refused = duis.send("11.3", ppmid.eui, {"FirmwareHash": image.hash.hex().upper()})
    assert decode_der(refused.message.payload).children[0].as_int() != 0
    assert ppmid.firmware.version != image.version
    assert hub.distribute_firmware(image, DeviceKind.PPMID) == 1
    outcome = duis.send("11.3", ppmid.eui, {"FirmwareHash": image.hash.hex().upper()})
    _like_rtds(outcome, rtds, "11.3_CS06", "CS06_11.3_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX")
    assert not outcome.message.is_macd  # critical: signed by the PPMID, checked by DuisUser
    assert ppmid.firmware.version == image.version
    # and CS08 now reads the new version
    read = duis.send("11.2", ppmid.eui)
    assert decode_der(read.message.payload).children[0].content == image.version


def test_a_ppmid_removed_from_the_device_log_gets_nothing(rtds: Path) -> None:
    conformance_path("duis", "service-request-matrix.json")
    world = build_world(homes=1, seed=42, conformance=CONFORMANCE)
    duis = DuisPath.load(world, conformance_path("duis"))
    ppmid = add_ppmid(world, world.home(0))
    assert world.home(0).hub.remove_from_device_log(ppmid.eui)
    with pytest.raises(DuisRoundTripError, match="no device response"):
        duis.send("11.2", ppmid.eui)
    assert ppmid.commands_executed == 0
    assert any(e.event == "dropped: recipient not in device log" for e in world.home(0).hub.log)


def _command(world: World, ppmid: Ppmid, counter: int, *, acb: AccessControlBroker | None = None,
             use_case: str = "CS08", payload: bytes = b"\x05\x00") -> bytes:
    command = build_precommand(originator=world.supplier.eui.value, recipient=ppmid.eui.value,
                               counter=counter, message_code=BY_NAME[use_case].code,
                               payload=payload)
    return (acb or world.dcc.acb).mac_command(command, ppmid.key_agreement_key)


def _last_drop(ppmid: Ppmid) -> DropReason:
    return ppmid.security_log[-1].reason


def test_ppmid_gbcs_checks_drop_bad_commands(setup: tuple[World, Ppmid]) -> None:
    world, ppmid = setup
    counter = world.supplier.counter + 1000
    good = _command(world, ppmid, counter)
    assert ppmid.receive(good) is not None
    assert ppmid.receive(good) is None  # replay
    assert _last_drop(ppmid) is DropReason.REPLAY
    tampered = bytearray(_command(world, ppmid, counter + 1))
    tampered[-14] ^= 1
    assert ppmid.receive(bytes(tampered)) is None
    assert _last_drop(ppmid) is DropReason.MAC_INVALID
    assert ppmid.receive(b"\xdd\x00") is None
    assert _last_drop(ppmid) is DropReason.MALFORMED
    # a critical CS06 without the supplier's signature
    assert ppmid.receive(_command(world, ppmid, counter + 2, use_case="CS06",
                                  payload=b"\x30\x00")) is None
    assert _last_drop(ppmid) is DropReason.SIGNATURE_MISSING
    # an ESME use case: authenticated, answered with a failure result, nothing executed
    executed = ppmid.commands_executed
    answer = ppmid.receive(_command(world, ppmid, counter + 3, use_case="ECS17b"))
    assert answer is not None and ppmid.commands_executed == executed


def test_the_ppmid_is_in_the_inventory_under_the_homes_mpan(setup: tuple[World, Ppmid]) -> None:
    world, ppmid = setup
    record = world.dcc.inventory.device(ppmid.eui)
    assert record is not None and record.mpxn == world.home(0).mpan
    assert record.hub == world.home(0).hub.eui
    assert add_ppmid(world, world.home(0)) is ppmid  # commissioning twice is a no-op
