"""Joins (CS03A1 / CS03B, SRV 8.7.1 / 8.7.2) and the restore of a replaced hub's
device log (CCS03, SRV 8.12.1) on the full DUIS path through the real DataCommsCompany: the
transform reads the other device's type from the inventory, and the HAN backup the DCC kept
from the old hub's CS14 alerts; each response parsed, checked and compared with the RTDS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.dcc.inventory import SmiStatus
from smarthydra.eui import Eui64
from smarthydra.gbcs.der import decode_der
from smarthydra.gbcs.xdlms import AccessResponse, decode_xdlms
from smarthydra.premises.esme_model import SupplyState
from smarthydra.premises.gpf import push_mirror
from smarthydra.premises.hub import DeviceKind
from smarthydra.premises.inhome import InHomeDisplay
from smarthydra.premises.ppmid import Ppmid
from smarthydra.sim.home import (
    DuisRoundTripError,
    GasInstallation,
    add_gas,
    add_ppmid,
    enrol_hub,
    forward_device_log_backups,
    rejoin_devices,
    replace_hub,
)
from smarthydra.sim.world import World, build_world
from tests.conftest import CONFORMANCE, conformance_path
from tests.premises.duis_helpers import GAS_SUPPLIER_ROLE, DuisOutcome, DuisPath
from tests.premises.shapes import payload_shape, rtds_message, shapes_match

GS = GAS_SUPPLIER_ROLE


@pytest.fixture(scope="module")
def rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


def _home(seed: int) -> tuple[World, GasInstallation, Ppmid, DuisPath]:
    conformance_path("duis", "service-request-matrix.json")
    world = build_world(homes=1, seed=seed, conformance=CONFORMANCE)
    home = world.home(0)
    gas = add_gas(world, home)
    ppmid = add_ppmid(world, home)
    enrol_hub(world, home)
    forward_device_log_backups(world, home)
    return world, gas, ppmid, DuisPath.load(world, conformance_path("duis"))


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[World, GasInstallation, Ppmid, DuisPath]]:
    yield _home(51)


def _like_rtds(outcome: DuisOutcome, rtds: Path, folder: str, name: str) -> None:
    theirs = rtds_message(rtds / folder, name)
    assert shapes_match(payload_shape(outcome.message), payload_shape(theirs)), (
        payload_shape(outcome.message), payload_shape(theirs))
    assert outcome.message.message_code == theirs.message_code


# --- joins ----------------------------------------------------------------------------------------


def test_cs03a1_the_esme_joins_the_ppmid(
        setup: tuple[World, GasInstallation, Ppmid, DuisPath], rtds: Path) -> None:
    world, _gas, ppmid, duis = setup
    esme = world.home(0).esme
    outcome = duis.send("8.7.1", esme.eui, {"OtherDeviceID": ppmid.eui.hyphenated})
    _like_rtds(outcome, rtds, "8.7.1_CS03A1", "CS03A1_8.7.1_SUCCESS_RESPONSE_GBCS.HEX")
    assert decode_der(outcome.message.payload).as_int() == 0
    # the transform took the PPMID's device type from the inventory (GBCS code 5)
    assert esme.joined.devices[ppmid.eui.value] == 5


def test_cs03b_the_gas_meter_joins_its_gas_proxy(
        setup: tuple[World, GasInstallation, Ppmid, DuisPath], rtds: Path) -> None:
    _world, gas, _ppmid, duis = setup
    gas.gsme.joined.devices.pop(gas.gpf.eui.value, None)
    outcome = duis.send("8.7.2", gas.gsme.eui, {"OtherDeviceID": gas.gpf.eui.hyphenated}, role=GS)
    _like_rtds(outcome, rtds, "8.7.2_CS03B", "CS03B_8.7.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert gas.gsme.joined.devices[gas.gpf.eui.value] == 3  # a GPF


def test_a_join_with_the_wrong_kind_of_device_is_refused_by_the_dcc(
        setup: tuple[World, GasInstallation, Ppmid, DuisPath]) -> None:
    world, gas, _ppmid, duis = setup
    esme = world.home(0).esme
    joined = dict(esme.joined.devices)
    # CS03A1 joins an ESME to a PPMID or HCALCS; the gas meter is neither
    with pytest.raises(DuisRoundTripError, match=r"8\.7\.1: the DCC answered"):
        duis.send("8.7.1", esme.eui, {"OtherDeviceID": gas.gsme.eui.hyphenated})
    assert esme.joined.devices == joined


# --- CCS03: a replaced hub's device log restored ---------------------------------------------------


def test_ccs03_restores_the_device_log_on_a_replacement_hub(rtds: Path) -> None:
    world, gas, ppmid, duis = _home(52)
    home = world.home(0)
    old = home.hub
    logged = {r.eui for r in old.device_log()}
    assert {home.esme.eui, gas.gsme.eui, ppmid.eui} <= logged
    assert world.dcc.inventory.han_backup(old.eui) is not None  # from the CS14 alerts

    replacement = replace_hub(world, home, gas=gas)
    new = replacement.new
    assert home.hub is new and new.device_log() == []
    assert rejoin_devices(replacement) == []  # a different network: nobody rejoins yet
    with pytest.raises(DuisRoundTripError, match="no device response"):
        duis.send("11.2", ppmid.eui)  # the new hub does not know the PPMID

    outcome = duis.send("8.12.1", new.eui, {"OldCHFID": old.eui.hyphenated})
    _like_rtds(outcome, rtds, "8.12.1_CCS03", "CCS03_8.12.1_SUCCESS_RESPONSE_GBCS.HEX")
    response = decode_xdlms(outcome.message.payload)
    assert isinstance(response, AccessResponse) and [r.result for r in response.results] == [0]
    assert {r.eui for r in new.device_log()} == logged
    assert new.extended_pan_id == old.extended_pan_id

    # a device with the wrong link key, or one the restored log does not name, cannot rejoin
    assert not new.rejoin(ppmid, bytes(16), DeviceKind.PPMID)
    stranger = InHomeDisplay(Eui64.parse("00DB1234567890EE"))
    assert not new.rejoin(stranger, old.han[ppmid.eui].link.link_key, DeviceKind.IHD)
    assert set(rejoin_devices(replacement)) == set(old.han)
    kinds = {r.eui: r.kind for r in new.device_log()}
    assert kinds[ppmid.eui] is DeviceKind.PPMID and kinds[gas.gsme.eui] is DeviceKind.GSME

    # the PPMID, the electricity meter and the gas meter all work through the new hub
    read = duis.send("11.2", ppmid.eui)
    assert decode_der(read.message.payload).children[0].content == ppmid.firmware.version
    duis.send("7.2", home.esme.eui)  # ECS42 / disable supply is critical: signed end to end
    assert home.esme.supply is SupplyState.DISABLED
    world.clock.advance(dt.timedelta(minutes=30))
    gas.gsme.consume(40)
    gas.gsme.end_of_half_hour()
    assert push_mirror(new, gas.gsme)  # the gas meter's push reaches the new GPF
    answered = gas.proxy.answered_from_copy
    outcome = duis.send("4.1.1", gas.gpf.eui, role=GS)
    assert gas.proxy.answered_from_copy == answered + 1 and gas.gpf.last_reliable
    assert world.dcc.inventory.device(old.eui).smi_status is SmiStatus.DECOMMISSIONED  # type: ignore[union-attr]


def test_ccs03_for_a_hub_the_dcc_holds_no_backup_of_is_refused(rtds: Path) -> None:
    world, _gas, _ppmid, duis = _home(53)
    new = world.home(0).hub
    with pytest.raises(DuisRoundTripError, match=r"8\.12\.1: the DCC answered"):
        duis.send("8.12.1", new.eui, {"OldCHFID": "00-DB-12-34-56-78-FF-FF"})
