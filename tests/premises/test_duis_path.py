"""ESME use cases on the full path: DUIS request -> DCC (checks, transform, pre-command signed
by the supplier for critical ones, ACB MAC) -> WAN -> Hydra hub (virtual terminal, CHF applet,
HAN link security) -> ESME -> response -> DUIS response.

The DUIS request for each use case is the one the RTDS command came from (derived with the
DCC transform tests' helper), re-issued by this world's supplier with a fresh RequestID.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthydra.dcc.service import DccResponse
from smarthydra.duis.request import CommandVariant, SignedPreCommand
from smarthydra.gbcs.builder import sign_precommand
from smarthydra.gbcs.envelope import GbcsMessage, decode_general_signing, decode_message
from smarthydra.gbcs.rtds import RtdsKeystore, read_hex_file
from smarthydra.gbcs.xdlms import AccessResponse, decode_xdlms
from smarthydra.premises.esme_model import PaymentMode, SupplyState
from smarthydra.sim.world import World, build_world
from tests.conftest import CONFORMANCE, conformance_path
from tests.premises.shapes import payload_shape, rtds_message, shapes_match

derive = pytest.importorskip("tests.dcc.test_transform_rtds").derive_request


@pytest.fixture(scope="module")
def rtds() -> Path:
    return conformance_path("gbcs", "rtds-4.5.0")


@pytest.fixture(scope="module")
def keystore() -> RtdsKeystore:
    return RtdsKeystore.load(conformance_path("gbcs", "rtds-keystore"))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    conformance_path("duis", "service-request-matrix.json")
    yield build_world(homes=1, seed=21, conformance=CONFORMANCE)


def _duis(world: World, rtds: Path, keystore: RtdsKeystore, srv: str, use_case: str,
          folder: str, stem: str, expected: str | None = None) -> tuple[DccResponse, GbcsMessage]:
    critical = (rtds / folder / f"{stem}_PRECOMMAND_GBCS.HEX").exists()
    name = f"{stem}_PRECOMMAND_GBCS.HEX" if critical else f"{stem}_COMMAND_GBCS.HEX"
    raw = read_hex_file(rtds / folder / name)
    gs = decode_general_signing(raw) if critical else decode_message(raw).general_signing
    try:
        derived = derive(srv, use_case, gs, keystore, critical, name)
    except Exception as exc:
        pytest.skip(f"DUIS request derivation (tests.dcc.test_transform_rtds) failed: {exc!r}")
    assert derived is not None, f"no DUIS request derivable for {use_case}"
    supplier = world.supplier
    request = dataclasses.replace(
        derived.request, request_id=supplier.next_request_id(derived.request.request_id.target))
    response = world.dcc.submit(request)
    assert response.ok, response.detail
    if critical:  # the supplier signs the DCC's pre-command and sends it back (CV 5)
        assert response.gbcs is not None
        signed = sign_precommand(response.gbcs, keystore=supplier.keystore, label="ds")
        response = world.dcc.submit_signed(SignedPreCommand(
            request.request_id, request.sender, request.role,
            request.service_reference_variant, CommandVariant.CRITICAL_SIGNED_TO_DEVICE,
            signed.wire()))
        assert response.ok, response.detail
    assert response.gbcs is not None
    message = decode_message(response.gbcs)
    theirs = rtds_message(rtds / folder, f"{expected or stem}_RESPONSE_GBCS.HEX")
    assert shapes_match(payload_shape(message), payload_shape(theirs)), (
        payload_shape(message), payload_shape(theirs))
    assert message.originator == request.request_id.target.value
    assert message.originator_counter == request.request_id.counter
    return response, message


def _results(message: GbcsMessage) -> list[int]:
    apdu = decode_xdlms(message.payload)
    assert isinstance(apdu, AccessResponse)
    return [r.result for r in apdu.results]


def test_supply_use_cases_through_duis(world: World, rtds: Path, keystore: RtdsKeystore) -> None:
    esme = world.home(0).esme
    _duis(world, rtds, keystore, "7.2", "ECS43", "7.2_ECS43", "ECS43_7.2_SUCCESS")
    assert esme.supply is SupplyState.DISABLED
    _, status = _duis(world, rtds, keystore, "7.4", "ECS45", "7.4_ECS45", "ECS45_7.4_SUCCESS")
    apdu = decode_xdlms(status.payload)
    assert isinstance(apdu, AccessResponse) and apdu.data[0].value == 0
    _duis(world, rtds, keystore, "7.3", "ECS44", "7.3_ECS44", "ECS44_7.3_SUCCESS")
    assert esme.supply is SupplyState.ARMED
    _duis(world, rtds, keystore, "7.1", "ECS42", "7.1_ECS42", "ECS42_7.1_SUCCESS")
    assert esme.supply is SupplyState.ENABLED


def test_balance_and_payment_mode_through_duis(world: World, rtds: Path,
                                               keystore: RtdsKeystore) -> None:
    credit = world.home(0).esme.model.credit
    before = credit.meter_balance
    _, message = _duis(world, rtds, keystore, "1.5", "ECS04a", "1.5_ECS04a", "ECS04a_1.5_SUCCESS")
    assert _results(message) == [0] and credit.meter_balance == before + 1200000
    _duis(world, rtds, keystore, "1.5", "ECS04b", "1.5_ECS04b", "ECS04b_1.5_SUCCESS")
    assert credit.meter_balance == 0
    credit.mode = PaymentMode.PREPAYMENT
    _duis(world, rtds, keystore, "1.6", "ECS02", "1.6_ECS02", "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS")
    assert credit.mode is PaymentMode.CREDIT


def test_a_utrn_not_made_for_this_meter_is_refused_through_duis(
        world: World, rtds: Path, keystore: RtdsKeystore) -> None:
    credit = world.home(0).esme.model.credit
    before = credit.meter_balance
    dcc_response, message = _duis(world, rtds, keystore, "2.2", "CS01a", "2.2_CS01a",
                                  "CS01a_2.2_SUCCESS", expected="CS01a_2.2_ERROR")
    assert dcc_response.ok
    assert _results(message) != [0]  # the RTDS UTRN was made for another meter and key
    assert credit.meter_balance == before


@pytest.mark.parametrize(("srv", "use_case", "folder", "stem"), [
    ("4.1.1", "ECS17b", "4.1.1_ECS17b", "ECS17b_4.1.1_SINGLE_SUCCESS"),
    ("4.6.1", "ECS21a", "4.6.1_ECS21a", "ECS21a_4.6.1_SINGLE_SUCCESS"),
    ("4.8.1", "ECS22b", "4.8.1_ECS22b", "ECS22b_4.8.1_SINGLE_SUCCESS"),
    ("4.10", "ECS23", "4.10_ECS23", "ECS23_4.10_SUCCESS"),
    ("6.13", "ECS35a", "6.13_ECS35a", "ECS35a_6.13_SUCCESS"),
    ("6.13", "ECS35b", "6.13_ECS35b", "ECS35b_6.13_SUCCESS"),
])
def test_reads_through_duis(world: World, rtds: Path, keystore: RtdsKeystore, srv: str,
                            use_case: str, folder: str, stem: str) -> None:
    executed = world.home(0).esme.commands_executed
    _, message = _duis(world, rtds, keystore, srv, use_case, folder, stem)
    assert _results(message) == [0] * len(_results(message))
    assert world.home(0).esme.commands_executed == executed + 1


def test_clock_through_duis(world: World, rtds: Path, keystore: RtdsKeystore) -> None:
    model = world.home(0).esme.model
    _, message = _duis(world, rtds, keystore, "6.11", "ECS70", "6.11_ECS70", "ECS70_6.11_SUCCESS")
    assert _results(message) == [0] * 5
    assert model.clock_base == 5
