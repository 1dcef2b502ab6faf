"""End to end: ``smarthydra duis transform FILE.xml`` against the RTDS files."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from typer.testing import CliRunner

from smarthydra.cli.main import app
from smarthydra.crypto.keystore import KeyUsage
from smarthydra.crypto.softstore import SoftKeystore
from smarthydra.duis.request import CommandVariant, RequestId
from smarthydra.duis.xml import build_request
from smarthydra.duis.xmldsig import XmlSigner
from smarthydra.pki.certificates import OrganisationCertificate, parse_certificate
from tests.conftest import conformance_path

runner = CliRunner()
SUPPLIER, ESME, GSME, CHF = (
    "90-B3-D5-1F-30-01-00-00",
    "00-DB-12-34-56-78-90-A0",
    "00-DB-12-34-56-78-90-A1",
    "00-DB-12-34-56-78-90-A2",
)


def _rtds_hex(folder: str, name: str) -> str:
    text = conformance_path("gbcs", "rtds-4.5.0", folder, name).read_text()
    return "".join(text.split()).upper()


def _write(tmp_path: Path, root: etree._Element) -> Path:
    path = tmp_path / "request.xml"
    path.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    return path


def _run(path: Path, *extra: str) -> tuple[int, str]:
    conformance = conformance_path()
    result = runner.invoke(
        app, ["duis", "transform", str(path), "--conformance", str(conformance), *extra]
    )
    return result.exit_code, result.output


def _supplier_signer() -> XmlSigner:
    name = "xml-sign-90B3D51F30010000-ds"
    key = serialization.load_der_private_key(
        conformance_path("smki", f"{name}.key").read_bytes(), None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    keystore = SoftKeystore(None, passphrase=b"test")
    keystore.import_private_key("xml", key, KeyUsage.DIGITAL_SIGNATURE)
    certificate = parse_certificate(conformance_path("smki", f"{name}.pem").read_bytes())
    assert isinstance(certificate, OrganisationCertificate)
    return XmlSigner(keystore, "xml", certificate)


def test_non_critical_read_prints_the_rtds_command_with_the_acb_mac(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{ESME}:1000")
    path = _write(tmp_path, build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"))
    code, out = _run(path)
    assert code == 0, out
    assert out.strip() == _rtds_hex("4.1.1_ECS17b", "ECS17b_4.1.1_SINGLE_SUCCESS_COMMAND_GBCS.HEX")


def test_signed_request_is_checked_and_transformed(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{ESME}:1000")
    root = _supplier_signer().sign(
        build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1")
    )
    path = _write(tmp_path, root)
    code, out = _run(path, "--json")
    assert code == 0, out
    body = json.loads(out)
    assert body["use_case"] == "ECS17b" and body["kind"] == "command"
    # A tampered body breaks the signature: refused, not transformed.
    path.write_bytes(path.read_bytes().replace(b":1000<", b":1001<"))
    code, out = _run(path, "--json")
    assert code == 1
    assert json.loads(out)["response_code"] == "E1"


def test_critical_request_prints_the_rtds_precommand(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{ESME}:1000")
    path = _write(tmp_path, build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "7.2"))
    code, out = _run(path)
    assert code == 0, out
    assert out.strip() == _rtds_hex("7.2_ECS43", "ECS43_7.2_SUCCESS_PRECOMMAND_GBCS.HEX")


def test_log_read_with_parameters(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{ESME}:1000")
    parameters: dict[str, object] = {
        "ReadLogPeriod": {
            "StartDateTime": "2014-12-31T00:00:00Z",
            "EndDateTime": "2015-01-01T00:00:00Z",
        },
        "LogToRead": "Event",
    }
    root = build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "6.13", parameters)
    code, out = _run(_write(tmp_path, root))
    assert code == 0, out
    assert out.strip() == _rtds_hex("6.13_ECS35a", "ECS35a_6.13_SUCCESS_COMMAND_GBCS.HEX")


def test_wrong_command_variant_is_refused_with_e12(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{ESME}:1000")
    path = _write(tmp_path, build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "7.2"))
    code, out = _run(path)
    assert code == 1
    assert "E12" in out


def test_unknown_device_is_refused_with_e19(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:00-DB-12-34-56-78-90-FF:1000")
    path = _write(tmp_path, build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1"))
    code, out = _run(path, "--json")
    assert code == 1
    assert json.loads(out)["response_code"] == "E19"


def test_device_type_the_request_does_not_apply_to_is_refused(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{CHF}:1000")
    path = _write(tmp_path, build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "7.2"))
    code, out = _run(path, "--json")
    assert code == 1
    assert json.loads(out)["response_code"] == "E11"


def test_not_xml_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "request.xml"
    path.write_bytes(b"not xml")
    code, out = _run(path)
    assert code == 1 and "E11" in out
    code, out = _run(tmp_path / "absent.xml")
    assert code == 1 and "cannot read" in out


def test_unknown_profile(tmp_path: Path) -> None:
    code, out = _run(tmp_path / "x.xml", "--profile", "nope")
    assert code == 2 and "unknown profile" in out


def test_firmware_activation_prints_the_rtds_precommand(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{ESME}:1000")
    body = {"FirmwareHash": "AA758690730934FF0685AA758690730934FF0685657788990011223344556677"}
    path = _write(tmp_path, build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "11.3", body))
    code, out = _run(path)
    assert code == 0, out
    assert out.strip() == _rtds_hex("11.3_CS06", "CS06_11.3_IMMEDIATE_SUCCESS_PRECOMMAND_GBCS.HEX")


def test_gas_log_read_prints_the_rtds_command(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{GSME}:1002")
    body = {
        "ReadLogPeriod": {
            "StartDateTime": "2014-12-30T00:00:00Z",
            "EndDateTime": "2015-01-01T00:00:00Z",
        }
    }
    path = _write(
        tmp_path, build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.8.1", body)
    )
    code, out = _run(path)
    assert code == 0, out
    assert out.strip() == _rtds_hex("4.8.1_GCS17", "GCS17_4.8.1_SUCCESS_COMMAND_GBCS.HEX")


def test_unsupported_parameter_value_is_refused_with_e11(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{ESME}:1000")
    body = {"DailyTariffBlockCounterMatrixReset": "false"}
    path = _write(tmp_path, build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "6.26", body))
    code, out = _run(path, "--json")
    assert code == 1, out
    assert json.loads(out)["response_code"] == "E11"


def test_gas_price_update_at_a_given_time_of_issue(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{GSME}:1000")
    prices = [("1", "9600"), ("2", "10200"), ("3", "10750"), ("4", "11000")]
    body: dict[str, object] = {
        "PriceElements": {
            "GasPriceElements": {
                "CurrencyUnits": "GBP",
                "StandingCharge": "22465",
                "TOUTariff": {"TOUPrice": [{"@index": i, "#text": p} for i, p in prices]},
            }
        }
    }
    path = _write(tmp_path, build_request(rid, CommandVariant.CRITICAL_TRANSFORM, "1.2.1", body))
    code, out = _run(path, "--issued-at", "2015-01-01T00:00:00Z")
    assert code == 0, out
    expected = "GCS01b_1.2.1_IMMEDIATE_TOU_SUCCESS_PRECOMMAND_GBCS.HEX"
    assert out.strip() == _rtds_hex("1.2.1_GCS01b", expected)
    code, out = _run(path, "--issued-at", "whenever")
    assert code == 2 and "xs:dateTime" in out


def test_join_takes_the_other_device_from_the_dccboxed_inventory(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{GSME}:1001")
    body = {"OtherDeviceID": "00-DB-12-34-56-78-90-9C"}
    path = _write(
        tmp_path, build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "8.7.2", body)
    )
    code, out = _run(path)
    assert code == 0, out
    assert out.strip() == _rtds_hex("8.7.2_CS03B", "CS03B_8.7.2_SUCCESS_COMMAND_GBCS.HEX")
    body = {"OtherDeviceID": "01-02-03-04-05-06-07-08"}
    path = _write(
        tmp_path, build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "8.7.2", body)
    )
    code, out = _run(path, "--json")
    assert code == 1 and "not in the inventory" in out


def test_alert_behaviour_prints_the_rtds_filter_command(tmp_path: Path) -> None:
    rid = RequestId.parse(f"{SUPPLIER}:{ESME}:1000")
    common = {"x810D": "Enable", "x810E": "Disable", "x81C4": "Disable", "x81C5": "Disable"}
    body = {"ElectricitySupplierAlerts": {"SupplierESMECommon": common}}
    path = _write(tmp_path, build_request(rid, CommandVariant.NON_CRITICAL_TO_DEVICE, "6.22", body))
    code, out = _run(path)
    assert code == 0, out
    assert out.strip() == _rtds_hex("6.22_ECS25a", "ECS25a_6.22_SUCCESS_COMMAND_GBCS.HEX")
