"""Home use cases through the DCC's DUIS gateway app (FastAPI, served in process by the test
client; TLS, which uvicorn adds in production, is not exercised): XMLDSig-signed DUIS requests
POSTed to /api/v1/serviceT and /serviceS, the DCC's signed DUIS answers read back, the GBCS
inside them checked, and the meters' state changed. The gateway picks the user role (GS for the
gas meter, IS for the electricity meter) from the registrations for the device's MPxN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from smarthydra.dcc.gateway import create_app
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant
from smarthydra.duis.xml import (
    DuisResponse,
    build_request,
    build_signed_precommand_request,
    parse_xml,
    read_response,
)
from smarthydra.duis.xmldsig import XmlSigner, repository_lookup, verify_enveloped
from smarthydra.gbcs.builder import sign_precommand
from smarthydra.gbcs.envelope import decode_message
from smarthydra.premises.esme_model import PaymentMode
from smarthydra.premises.gpf import push_mirror
from smarthydra.premises.gsme import ValveState
from smarthydra.sim.gateway import XmlSigningSetup, gateway_for_world
from smarthydra.sim.home import GasInstallation, add_gas
from smarthydra.sim.world import World, build_world
from tests.conftest import conformance_path
from tests.premises.duis_helpers import prepayment_mode
from tests.premises.shapes import payload_shape, rtds_message, shapes_match


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[World, GasInstallation, TestClient, XmlSigningSetup]]:
    duis_dir = conformance_path("duis", "duis-5.4.xsd").parent
    database = tmp_path_factory.mktemp("dcc") / "dcc.db"
    # The app serves from a worker thread: the DCC's store is a file, not in-memory SQLite.
    world = build_world(homes=1, seed=33, conformance=duis_dir.parent,
                        database_url=f"sqlite:///{database}")
    gas = add_gas(world, world.home(0))
    gateway, signing = gateway_for_world(world, schema_dir=duis_dir)
    with TestClient(create_app(gateway)) as client:
        yield world, gas, client, signing


def _answer(world: World, signing: XmlSigningSetup, body: bytes) -> DuisResponse:
    """The DCC's reply: schema-valid DUIS, signed with the DCC's XML-signing certificate."""
    root = parse_xml(body)
    verified = verify_enveloped(root, repository_lookup(world.repository, world.clock))
    assert verified.certificate == signing.dcc.certificate
    return read_response(root)


def _post(client: TestClient, world: World, signing: XmlSigningSetup, path: str,
          root: object) -> DuisResponse:
    signer: XmlSigner = signing.users[world.supplier.eui]
    reply = client.post(path, content=signer.sign_bytes(root))
    assert reply.status_code == 200, reply.text
    answer = _answer(world, signing, reply.content)
    assert answer.code is ResponseCode.SUCCESS, answer
    return answer


def _critical(client: TestClient, world: World, signing: XmlSigningSetup, srv: str,
              target: object, body: dict[str, object] | None = None) -> DuisResponse:
    from smarthydra.eui import Eui64

    assert isinstance(target, Eui64)
    rid = world.supplier.next_request_id(target)
    precommand = _post(client, world, signing, "/api/v1/serviceT",
                       build_request(rid, CommandVariant.CRITICAL_TRANSFORM, srv, body))
    assert precommand.precommand is not None
    signed = sign_precommand(precommand.precommand, keystore=world.supplier.keystore, label="ds")
    answer = _post(client, world, signing, "/api/v1/serviceS", build_signed_precommand_request(
        rid, CommandVariant.CRITICAL_SIGNED_TO_DEVICE, srv, signed.wire()))
    assert answer.gbcs is not None and answer.request_id == rid
    return answer


def test_gcs32_valve_off_through_the_gateway(
        served: tuple[World, GasInstallation, TestClient, XmlSigningSetup]) -> None:
    world, gas, client, signing = served
    rtds = conformance_path("gbcs", "rtds-4.5.0")
    answer = _critical(client, world, signing, "7.2", gas.gsme.eui)
    assert answer.gbcs is not None
    message = decode_message(answer.gbcs)
    assert message.originator == gas.gsme.eui.value and message.general_signing.is_signed
    theirs = rtds_message(rtds / "7.2_GCS32", "GCS32_7.2_SUCCESS_RESPONSE_GBCS.HEX")
    assert shapes_match(payload_shape(message), payload_shape(theirs))
    assert gas.gsme.gas.valve is ValveState.OFF


def test_ecs03_prepayment_mode_through_the_gateway(
        served: tuple[World, GasInstallation, TestClient, XmlSigningSetup]) -> None:
    world, _gas, client, signing = served
    esme = world.home(0).esme
    answer = _critical(client, world, signing, "1.6", esme.eui, prepayment_mode(123456))
    assert answer.gbcs is not None and decode_message(answer.gbcs).originator == esme.eui.value
    assert esme.model.credit.mode is PaymentMode.PREPAYMENT
    assert esme.model.credit.disablement_threshold == 123456


def test_gcs13a_read_from_the_gas_proxy_through_the_gateway(
        served: tuple[World, GasInstallation, TestClient, XmlSigningSetup]) -> None:
    world, gas, client, signing = served
    for _ in range(2):
        world.clock.advance(dt.timedelta(minutes=30))
        gas.gsme.consume(40)
        gas.gsme.end_of_half_hour()
        push_mirror(world.home(0).hub, gas.gsme)
    pushes = gas.gsme.mirror_pushes
    rid = world.supplier.next_request_id(gas.gpf.eui)
    answer = _post(client, world, signing, "/api/v1/serviceS",
                   build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"))
    assert answer.gbcs is not None
    message = decode_message(answer.gbcs)
    assert message.originator == gas.gpf.eui.value and gas.gpf.last_reliable
    assert gas.gsme.mirror_pushes == pushes  # the battery meter was not woken for it
