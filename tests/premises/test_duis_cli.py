"""``smarthydra home duis``: one service request on the full DUIS path from the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.gbcs.gbz import decode_gbz
from tests.conftest import conformance_path


@pytest.fixture(autouse=True)
def _conformance() -> None:
    conformance_path("duis", "duis-5.4.xsd")


def test_disable_supply_critical_through_the_dcc() -> None:
    result = CliRunner().invoke(app, ["home", "duis", "7.2"])
    assert result.exit_code == 0, result.output
    assert "DUIS I0" in result.output and "0x0050" in result.output and "signed" in result.output


def test_gas_balance_adjustment_with_a_json_body_and_xml_output() -> None:
    body = json.dumps({"PrepaymentMode": {"AdjustMeterBalance": "500"}})
    result = CliRunner().invoke(app, ["home", "duis", "1.5", "--device", "gsme", "--body", "-",
                                      "--xml"], input=body)
    assert result.exit_code == 0, result.output
    assert "<sr:AdjustMeterBalance>500</sr:AdjustMeterBalance>" in result.output
    assert "<sr:ResponseMessage>" in result.output and "GBCSPayload" in result.output


def test_read_answered_by_the_gas_proxy() -> None:
    result = CliRunner().invoke(app, ["home", "duis", "4.1.1", "--device", "gpf"])
    assert result.exit_code == 0, result.output
    payload = bytes.fromhex(result.output.strip().splitlines()[-1])
    assert decode_gbz(payload).components[0].cluster_id == 0x0702


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["7.2", "--device", "toaster"], None, "--device must be one of"),
    (["1.5", "--body", "-"], '{"Bogus": "1"}', "not valid DUIS"),
    (["1.5", "--body", "-"], "not json", "not JSON"),
    (["99.9"], None, "no service request variant"),
    (["8.12.1", "--device", "hub", "--body", "-"], '{"OldCHFID": "00-DB-12-34-56-78-00-01"}',
     "8.12.1: the DCC answered"),
])
def test_bad_input_is_a_clear_error(args: list[str], stdin: str | None, message: str) -> None:
    result = CliRunner().invoke(app, ["home", "duis", *args], input=stdin)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_ppmid_firmware_version_cs08() -> None:
    result = CliRunner().invoke(app, ["home", "duis", "11.2", "--device", "ppmid"])
    assert result.exit_code == 0, result.output
    assert "0x0129" in result.output and "MAC verified" in result.output
    assert result.output.strip().splitlines()[-1] == "300904040123abcd020100"  # version, success


def test_replace_hub_restores_the_device_log_and_the_devices_answer() -> None:
    result = CliRunner().invoke(app, ["home", "replace-hub"])
    assert result.exit_code == 0, result.output
    assert "3 devices restored" in result.output and "DUIS I0" in result.output
    assert "300904040123abcd020100" in result.output
