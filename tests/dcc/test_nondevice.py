"""Non-device services through serviceN (CV 8) on the durable DCC: answers validate against the
DUIS schema; schedules run on the DCC's (simulated) clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.dcc.dccboxed import HUB, MPAN
from smarthydra.dcc.gateway import Endpoint
from smarthydra.dcc.inventory import SmiStatus
from smarthydra.dcc.nondevice import next_run
from smarthydra.dcc.store import RequestState
from smarthydra.duis.codes import ResponseCode
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import DuisResponse, parse_xml, read_response
from smarthydra.eui import Eui64
from smarthydra.wan.coverage import CoverageFileError, WanCoverage
from tests.conftest import conformance_path
from tests.dcc.dccboxed_helpers import ESME, Boxed, boxed, xml_signer
from tests.dcc.test_durable import send

CV8 = CommandVariant.NON_DEVICE


def _nd(setup: Boxed, srv: str, parameters: dict[str, object]) -> DuisResponse:
    return send(setup, setup.request(srv, CV8, parameters=parameters), Endpoint.NON_DEVICE)


def _body(setup: Boxed, srv: str, parameters: dict[str, object]) -> bytes:
    reply = setup.profile.gateway.handle(
        Endpoint.NON_DEVICE, setup.request(srv, CV8, parameters=parameters)
    )
    assert reply.status == 200, reply.detail
    return reply.body


def test_read_inventory_by_device_and_by_mpxn() -> None:
    setup = boxed()
    response = _nd(setup, "8.2", {"DeviceID": ESME.hyphenated})
    assert response.code is ResponseCode.SUCCESS
    body = _body(setup, "8.2", {"DeviceID": ESME.hyphenated})
    assert b"<sr:DSPInventory><sr:Device><sr:DeviceID>00-DB-12-34-56-78-90-A0" in body
    assert b"<sr:DeviceStatus>Commissioned" in body
    many = _body(setup, "8.2", {"MPxN": MPAN})
    assert many.count(b"<sr:Device>") == 17  # DSPInventory's limit
    assert _nd(setup, "8.2", {"DeviceID": "00-DB-00-00-00-00-00-01"}).code is ResponseCode.UNKNOWN_DEVICE


def test_decommission_then_commands_are_e5_and_operator_may_not_decommission() -> None:
    setup = boxed()
    operator = xml_signer("90B3D51F30020000")
    rid = RequestId(Eui64.parse("90B3D51F30020000"), ESME, 7)
    refused = send(
        setup,
        setup.request("8.3", CV8, rid=rid, parameters={"DeviceID": ESME.hyphenated}, signer=operator),
        Endpoint.NON_DEVICE,
    )
    assert refused.code is ResponseCode.ROLE_NOT_ELIGIBLE
    assert _nd(setup, "8.3", {"DeviceID": ESME.hyphenated}).code is ResponseCode.SUCCESS
    assert setup.profile.dcc.inventory.device(ESME).smi_status is SmiStatus.DECOMMISSIONED  # type: ignore[union-attr]
    assert send(setup, setup.request()).code is ResponseCode.INVALID_SMI_STATUS


def test_update_inventory_and_hub_status_updates() -> None:
    setup = boxed()
    inventory = setup.profile.dcc.inventory
    assert _nd(setup, "8.4", {"DeviceID": ESME.hyphenated, "UpdateDeviceStatusExceptCH": "InstalledNotCommissioned"}).code is ResponseCode.SUCCESS
    assert inventory.device(ESME).smi_status is SmiStatus.INSTALLED_NOT_COMMISSIONED  # type: ignore[union-attr]
    fault = {
        "DeviceID": HUB.hyphenated,
        "CHFFaultReturnType": "CHFFaultReturn",
    }
    # 8.14.3's body needs more than this: a schema-invalid body is E11 with HTTP 400.
    reply = setup.profile.gateway.handle(Endpoint.NON_DEVICE, setup.request("8.14.3", CV8, parameters=fault))
    assert reply.status == 400
    assert inventory.device(HUB).smi_status is SmiStatus.COMMISSIONED  # type: ignore[union-attr]


COVERAGE = """# match,region,available,technology,likelihood,anticipated,auxiliary,information
UPRN:100023336956,Central,yes,Cellular,High,,,
EH1,North,yes,Long Range Radio,Medium,,,
EH12 9,North,no,Long Range Radio,Low,2027-03-01,External aerial,Mast planned
"""


def _matrix(setup: Boxed, parameters: dict[str, object]) -> bytes:
    body = _body(setup, "12.1", parameters)
    root = parse_xml(body)
    setup.profile.gateway.schema.validate(root)
    assert read_response(root).code is ResponseCode.SUCCESS
    return body


def test_wan_matrix_from_the_csps_coverage_table() -> None:
    setup = boxed()
    # Without coverage data the DCC says it does not know, and invents nothing.
    unknown = _matrix(setup, {"UPRN": "123456"})
    assert b"<sr:Request><sr:UPRN>123456</sr:UPRN></sr:Request>" in unknown
    assert b"<sr:CSPRegion>Unknown</sr:CSPRegion>" in unknown
    assert b"CoverageAvailability" not in unknown
    setup.profile.dcc.wan_coverage = WanCoverage.from_csv(COVERAGE)
    by_uprn = _matrix(setup, {"UPRN": "100023336956"})
    assert b"<sr:CSPRegion>Central</sr:CSPRegion>" in by_uprn
    assert b"<sr:CoverageAvailability>true</sr:CoverageAvailability>" in by_uprn
    assert b"<sr:WANTechnology>Cellular</sr:WANTechnology>" in by_uprn
    district = _matrix(
        setup, {"PartialAddress": {"PostCode": "EH1 1YZ", "AddressIdentifier": "12"}}
    )
    assert b"<sr:PostCode>EH1 1YZ</sr:PostCode>" in district
    assert b"<sr:CSPRegion>North</sr:CSPRegion>" in district
    assert b"<sr:ConnectivityLikelihood>Medium</sr:ConnectivityLikelihood>" in district
    # The longest matching prefix wins: this sector is not covered yet.
    sector = _matrix(
        setup, {"PartialAddress": {"PostCode": "eh12 9aa", "AddressIdentifier": "Flat 2"}}
    )
    assert b"<sr:CoverageAvailability>false</sr:CoverageAvailability>" in sector
    assert b"<sr:AnticipatedCoverageDate>2027-03-01</sr:AnticipatedCoverageDate>" in sector
    assert b"<sr:AuxiliaryEquipmentRequired>External aerial" in sector
    elsewhere = _matrix(
        setup, {"PartialAddress": {"PostCode": "SW1A 1AA", "AddressIdentifier": "1"}}
    )
    assert b"<sr:CSPRegion>Unknown</sr:CSPRegion>" in elsewhere


@pytest.mark.parametrize(
    "line",
    [
        "EH1,Middle,yes,Cellular,High",
        "EH1,North,maybe,Cellular,High",
        "EH1,North,yes,Cellular,Certain",
        "EH1,North,no,Cellular,Low,next year",
        "UPRN:12x,North,yes,Cellular,High",
        "E-H-1,North,yes,Cellular,High",
        "EH1,North,yes,,High",
    ],
)
def test_coverage_file_errors_name_the_line(line: str) -> None:
    with pytest.raises(CoverageFileError, match="line 2"):
        WanCoverage.from_csv("# header\n" + line + "\n")


def test_dcc_serve_refuses_a_bad_coverage_file(tmp_path: Path) -> None:
    bad = tmp_path / "coverage.csv"
    bad.write_text("EH1,Middle,yes,Cellular,High\n")
    result = CliRunner().invoke(
        app,
        [
            "dcc", "serve", "--profile", "dccboxed", "--conformance", str(conformance_path()),
            "--database", f"sqlite:///{tmp_path / 'd.sqlite3'}", "--insecure-http",
            "--wan-coverage", str(bad),
        ],
    )
    assert result.exit_code == 2 and "not a CSP region" in result.output


def _installed(hub: Eui64, mpxn: str) -> dict[str, object]:
    return {
        "DeviceID": hub.hyphenated,
        "CHFInstallType": "New CHF Install",
        "MPxN": mpxn,
        "AerialInstall": "false",
        "CHFLocation": "Indoors on external wall",
    }


def test_hub_installed_with_sm_wan_8_14_1() -> None:
    setup = boxed()
    inventory = setup.profile.dcc.inventory
    inventory.set_status(HUB, SmiStatus.INSTALLED_NOT_COMMISSIONED)
    assert _nd(setup, "8.14.1", _installed(HUB, MPAN)).code is ResponseCode.SUCCESS
    assert inventory.device(HUB).smi_status is SmiStatus.COMMISSIONED  # type: ignore[union-attr]
    # Not a hub; an MPxN the supplier does not supply; a hub already withdrawn.
    assert _nd(setup, "8.14.1", _installed(ESME, MPAN)).code is ResponseCode.INVALID_REQUEST
    assert _nd(setup, "8.14.1", _installed(HUB, "1999999999999")).code is ResponseCode.NOT_DEVICE_OWNER
    assert (
        _nd(setup, "8.14.1", _installed(Eui64.parse("00DB000000000001"), MPAN)).code
        is ResponseCode.UNKNOWN_DEVICE
    )
    inventory.set_status(HUB, SmiStatus.WITHDRAWN)
    assert _nd(setup, "8.14.1", _installed(HUB, MPAN)).code is ResponseCode.INVALID_SMI_STATUS
    # The network operator is not eligible for 8.14.1.
    operator = xml_signer("90B3D51F30020000")
    rid = RequestId(Eui64.parse("90B3D51F30020000"), HUB, 70)
    refused = send(
        setup,
        setup.request("8.14.1", CV8, rid=rid, parameters=_installed(HUB, MPAN), signer=operator),
        Endpoint.NON_DEVICE,
    )
    assert refused.code is ResponseCode.ROLE_NOT_ELIGIBLE


def test_cv8_at_serviceS_is_e13() -> None:
    setup = boxed()
    response = send(setup, setup.request("8.2", CV8, parameters={"DeviceID": ESME.hyphenated}))
    assert response.code is ResponseCode.WRONG_URL_FOR_COMMAND_VARIANT


def _schedule(start: str) -> dict[str, object]:
    return {
        "ScheduleFrequency": "Daily",
        "ScheduleStartDate": start,
        "DSPScheduledServiceReference": "4.6",
        "DSPScheduledServiceReferenceVariant": "4.6.1",
        "DeviceID": ESME.hyphenated,
        "DSPRetrieveImportDailyReadLog": {
            "StartDateOffset": "-1",
            "StartTime": "00:00:00",
            "EndDateOffset": "0",
            "EndTime": "00:00:00",
        },
    }


def test_schedules_create_read_run_on_the_clock_and_delete(database_url: str) -> None:
    setup = boxed(database_url)
    created = _body(setup, "5.1", _schedule("2026-06-02"))
    assert b"<sr:DSPScheduleID>1</sr:DSPScheduleID>" in created
    read = _body(setup, "5.2", {"DSPScheduleID": "1"})
    assert b"<sr:DSPSchedulesRead><sr:DSPSchedules><sr:DSPScheduleID>1" in read
    gateway = setup.profile.gateway
    gateway.work()
    store = setup.profile.store
    assert store.requests_in_state(RequestState.DISPATCHED) == []  # not due yet (starts tomorrow)
    setup.clock.advance(dt.timedelta(days=3))
    gateway.work()
    runs = store.requests_in_state(RequestState.DISPATCHED)
    assert len(runs) == 1  # the DCC runs what is due once per round, catching up a day a round
    gateway.work()
    gateway.work()
    assert len(store.requests_in_state(RequestState.DISPATCHED)) == 3
    assert all(r.srv == "4.6.1" and "#schedule-1-" in r.request_id for r in store.requests_in_state(RequestState.DISPATCHED))
    assert _nd(setup, "5.3", {"DSPScheduleID": "1"}).code is ResponseCode.SUCCESS
    setup.clock.advance(dt.timedelta(days=2))
    gateway.work()
    assert len(store.requests_in_state(RequestState.DISPATCHED)) == 3
    assert _nd(setup, "5.2", {"DSPScheduleID": "1"}).code is ResponseCode.INVALID_REQUEST


def test_next_run_keeps_calendar_months() -> None:
    t = dt.datetime(2026, 1, 31, 1, tzinfo=dt.UTC)
    assert next_run(t, "Monthly") == dt.datetime(2026, 2, 28, 1, tzinfo=dt.UTC)
    assert next_run(t, "Quarterly") == dt.datetime(2026, 4, 30, 1, tzinfo=dt.UTC)
    assert next_run(t, "Yearly") == dt.datetime(2027, 1, 31, 1, tzinfo=dt.UTC)
    assert next_run(t, "Weekly") == t + dt.timedelta(days=7)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("UPRN:0123456789EHSW ,#yesnoHighLowNorth-\n")), max_size=200))
def test_coverage_parser_takes_any_text_without_crashing(text: str) -> None:
    try:
        coverage = WanCoverage.from_csv(text)
    except CoverageFileError:
        return
    for postcode in ("EH1 1YZ", "", "N"):
        coverage.for_postcode(postcode)
